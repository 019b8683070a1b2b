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

/**
 * What the identity and REST API layers refuse, each code with the HTTP status it is answered with.
 * Registry (/v2) routes answer in the OCI error format instead.
 */
export const apiErrorCodes = {
  SLW_ERR_INVALID: 400,
  SLW_ERR_UNAUTHENTICATED: 401,
  SLW_ERR_FORBIDDEN: 403,
  SLW_ERR_NOT_FOUND: 404,
  SLW_ERR_CONFLICT: 409,
  SLW_ERR_THROTTLED: 429,
} as const;

export type ApiErrorCode = keyof typeof apiErrorCodes;

export class ApiError extends SlipwayError {
  declare readonly code: ApiErrorCode;
  readonly status: number;
  /** Seconds a throttled client should wait. */
  readonly retryAfter: number | undefined;
  constructor(code: ApiErrorCode, message: string, options: { retryAfter?: number } = {}) {
    super(code, message);
    this.status = apiErrorCodes[code];
    this.retryAfter = options.retryAfter;
  }
}

export const invalid = (message: string) => new ApiError('SLW_ERR_INVALID', message);
export const notFound = (message: string) => new ApiError('SLW_ERR_NOT_FOUND', message);
export const conflict = (message: string) => new ApiError('SLW_ERR_CONFLICT', message);
export const forbidden = (message: string) => new ApiError('SLW_ERR_FORBIDDEN', message);
export const unauthenticated = (message: string) => new ApiError('SLW_ERR_UNAUTHENTICATED', message);

/** What an error says, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
