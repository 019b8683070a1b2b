import type { Dispatcher } from 'undici';

export type ResponseHeaders = Dispatcher.ResponseData['headers'];

/** The first value of a header that may have been sent more than once. */
export function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `Content-Length` when it is a plain number of bytes. */
export function contentLength(headers: ResponseHeaders): number | undefined {
  const value = single(headers['content-length']);
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}
