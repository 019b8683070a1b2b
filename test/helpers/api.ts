import type { TestSlipway } from './slipway.ts';

export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  body: T & { error?: { code: string; message: string } };
  headers: Headers;
}

/** Calls /api/v1 as a client would: JSON in and out, one Authorization header (or none). */
export class ApiCaller {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(slipway: TestSlipway, headers: Record<string, string> = {}) {
    this.#base = `${slipway.url}/api/v1`;
    this.#headers = headers;
  }

  /** Calls with this Authorization header (or none with undefined). */
  static as(slipway: TestSlipway, authorization: string | undefined): ApiCaller {
    return new ApiCaller(slipway, authorization ? { Authorization: authorization } : {});
  }

  get<T = Record<string, unknown>>(path: string): Promise<ApiAnswer<T>> {
    return this.call<T>('GET', path);
  }

  post<T = Record<string, unknown>>(path: string, body?: unknown): Promise<ApiAnswer<T>> {
    return this.call<T>('POST', path, body);
  }

  put<T = Record<string, unknown>>(path: string, body?: unknown): Promise<ApiAnswer<T>> {
    return this.call<T>('PUT', path, body);
  }

  patch<T = Record<string, unknown>>(path: string, body?: unknown): Promise<ApiAnswer<T>> {
    return this.call<T>('PATCH', path, body);
  }

  delete<T = Record<string, unknown>>(path: string): Promise<ApiAnswer<T>> {
    return this.call<T>('DELETE', path);
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const headers: Record<string, string> = { ...this.#headers };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: (text ? JSON.parse(text) : {}) as ApiAnswer<T>['body'],
      headers: response.headers,
    };
  }
}
