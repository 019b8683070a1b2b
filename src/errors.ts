/**
 * Errors that are not OCI protocol errors. Every one has a stable string code; callers match on
 * `code` or on the class, never on the message.
 */
export class SlipwayError extends Error {
  readonly code: string;
  constructor(code: `SLW_ERR_${string}`, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class ConfigError extends SlipwayError {
  constructor(message: string) {
    super('SLW_ERR_CONFIG', message);
  }
}

export class BlobNotFoundError extends SlipwayError {
  readonly digest: string;
  constructor(digest: string) {
    super('SLW_ERR_BLOB_NOT_FOUND', `blob ${digest} is not in storage`);
    this.digest = digest;
  }
}

export class UploadNotFoundError extends SlipwayError {
  readonly uploadId: string;
  constructor(uploadId: string) {
    super('SLW_ERR_UPLOAD_NOT_FOUND', `upload ${uploadId} is not in storage`);
    this.uploadId = uploadId;
  }
}

export class StorageError extends SlipwayError {
  constructor(message: string, options?: ErrorOptions) {
    super('SLW_ERR_STORAGE', message, options);
  }
}
