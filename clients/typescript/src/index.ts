/**
 * A typed TypeScript client of Sluice's HTTP API.
 *
 * The types (`./schema.d.ts`) are generated from docs/openapi.json by openapi-typescript
 * (`npm run generate`; `npm run check` fails when they are out of date); requests go through
 * openapi-fetch, so every path, parameter and body is checked by the compiler. This module
 * adds the bearer token, Ed25519 request signing (Node), and `unwrap`, which turns an error
 * answer into a thrown `SluiceError` carrying the problem's `code` and field errors.
 */

import { createPrivateKey, randomBytes, sign, type KeyObject } from "node:crypto";
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
export type Withdrawal = components["schemas"]["Withdrawal"];
export type WithdrawalRequest = components["schemas"]["WithdrawalRequest"];
export type WithdrawalPage = components["schemas"]["WithdrawalPage"];
export type WithdrawalStatus = components["schemas"]["WithdrawalStatus"];
export type Event = components["schemas"]["Event"];
export type Transaction = components["schemas"]["Transaction"];
/** The batch a transaction is, as one of its withdrawals sees it (`Transaction.batch`). */
export type Batch = components["schemas"]["Batch"];
export type Balance = components["schemas"]["Balance"];
export type Network = components["schemas"]["Network"];
export type NetworkAsset = components["schemas"]["NetworkAsset"];
export type NetworkHotWallet = components["schemas"]["NetworkHotWallet"];
export type NetworkBatching = components["schemas"]["NetworkBatching"];
/** A withdrawal's `priority`, and the keys of a network's `feeLevels`. */
export type FeeLevel = components["schemas"]["FeeLevel"];
export type FeeLevelPrice = components["schemas"]["FeeLevelPrice"];
export type FeeLimits = components["schemas"]["FeeLimits"];
export type FeeModel = components["schemas"]["FeeModel"];
export type RpcHealth = components["schemas"]["RpcHealth"];
export type Readiness = components["schemas"]["Readiness"];
export type Problem = components["schemas"]["Problem"];
export type FieldError = components["schemas"]["FieldError"];
export type SluiceClient = Client<paths>;

export const VERSION = "0.1.0";
export const TIMESTAMP_HEADER = "X-Sluice-Timestamp";
export const NONCE_HEADER = "X-Sluice-Nonce";
export const SIGNATURE_HEADER = "X-Sluice-Signature";

export interface SluiceClientOptions {
  /** Where Sluice answers, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** The `sluice_<id>_<secret>` token. */
  apiKey: string;
  /**
   * The Ed25519 private key (a `KeyObject`, or PKCS #8 PEM) of a key made with
   * `sluice apikey create --public-key`: every request is then signed.
   */
  signingKey?: KeyObject | string;
  /** A fetch of your own (tests, proxies); the global one by default. */
  fetch?: typeof fetch;
}

/** A failed answer: the problem+json body's fields, and the answer's `X-Request-ID`. */
export class SluiceError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly fieldErrors: FieldError[];
  readonly requestId: string | null;

  constructor(status: number, problem: Partial<Problem>, requestId: string | null) {
    const code = problem.code ?? `http_${status}`;
    const detail = problem.detail ?? "";
    super(`${status} ${code}: ${detail}`);
    this.name = "SluiceError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.fieldErrors = problem.errors ?? [];
    this.requestId = requestId;
  }
}

/**
 * The data of a successful answer, or a thrown `SluiceError`:
 * `const withdrawal = unwrap(await sluice.GET("/v1/withdrawals/{withdrawalId}", ...))`.
 */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  const { response } = result;
  if (response.ok) {
    return result.data as T;
  }
  const problem = typeof result.error === "object" && result.error !== null ? result.error : {};
  throw new SluiceError(response.status, problem, response.headers.get("X-Request-ID"));
}

/** The bytes signed for one request (docs/api.md, "Signed requests"). */
export function canonicalRequest(
  timestamp: string,
  nonce: string,
  method: string,
  target: string,
  body: Uint8Array,
): Buffer {
  const head = Buffer.from(`${timestamp}\n${nonce}\n${method.toUpperCase()}\n${target}\n`, "utf8");
  return Buffer.concat([head, body]);
}

/**
 * Signs each request with Ed25519 over its timestamp, a fresh random nonce, method, target
 * (path and query as sent) and body. The nonce makes every signature new, so Sluice's replay
 * check never refuses a repeated request.
 */
export function signingMiddleware(key: KeyObject | string): Middleware {
  const privateKey = typeof key === "string" ? createPrivateKey(key) : key;
  return {
    async onRequest({ request }) {
      const body = new Uint8Array(await request.clone().arrayBuffer());
      const url = new URL(request.url);
      const target = url.pathname + url.search;
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = randomBytes(16).toString("base64url");
      const message = canonicalRequest(timestamp, nonce, request.method, target, body);
      request.headers.set(TIMESTAMP_HEADER, timestamp);
      request.headers.set(NONCE_HEADER, nonce);
      request.headers.set(SIGNATURE_HEADER, sign(null, message, privateKey).toString("base64"));
      return request;
    },
  };
}

/** A client of every operation of docs/openapi.json, with the key (and signature) on each. */
export function createSluiceClient(options: SluiceClientOptions): SluiceClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    fetch: options.fetch,
    headers: {
      Authorization: `Bearer ${options.apiKey}`,
      "User-Agent": `sluice-client-ts/${VERSION}`,
    },
  });
  if (options.signingKey !== undefined) {
    client.use(signingMiddleware(options.signingKey));
  }
  return client;
}
