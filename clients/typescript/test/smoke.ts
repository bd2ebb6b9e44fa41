/**
 * A smoke run of the TypeScript client against a running Sluice (e.g. `sluice dev`):
 *
 *   SLUICE_URL=… SLUICE_API_KEY=… SLUICE_SIGNED_KEY=… SLUICE_SIGNING_PEM=caller.pem \
 *   SLUICE_USER=demo-user SLUICE_NETWORK=anvil node dist/test/smoke.js
 *
 * SLUICE_SIGNED_KEY is a key made with `--public-key` from SLUICE_SIGNING_PEM's public half.
 * Exits non-zero at the first thing that is not as expected.
 */

import { readFileSync } from "node:fs";
import { createSluiceClient, SluiceError, unwrap, type FeeLevel, type Network } from "../src/index.js";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`not as expected: ${what}`);
  console.log(`ok - ${what}`);
}

async function main(): Promise<void> {
  const baseUrl = env("SLUICE_URL");
  const userId = env("SLUICE_USER");
  const network = env("SLUICE_NETWORK");
  const toAddress = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

  const sluice = createSluiceClient({ baseUrl, apiKey: env("SLUICE_API_KEY") });
  const health = unwrap(await sluice.GET("/health"));
  check(health.status === "ok", "health");

  const networks: Network[] = unwrap(await sluice.GET("/v1/networks"));
  const listed = networks.find((n) => n.name === network);
  check(listed !== undefined && listed.assets[0]?.tokenAddress == null, "list networks (native coin first)");

  const id = `ts-${Date.now()}`;
  const priority: FeeLevel = "fast";
  const created = unwrap(
    await sluice.POST("/v1/withdrawals", { body: { id, userId, amount: "0.01", toAddress, network, priority } }),
  );
  check(created.id === id && created.status === "PENDING", "create a withdrawal");
  check(created.priority === priority && created.feePaid == null, "at the priority asked, no fee paid yet");
  const page = unwrap(await sluice.GET("/v1/withdrawals", { params: { query: { userId, limit: 2 } } }));
  check(page.items.length > 0, "list withdrawals");

  try {
    unwrap(await sluice.POST("/v1/withdrawals", { body: { userId, amount: "1", toAddress: "0x12", network } }));
    check(false, "a bad address is refused");
  } catch (error) {
    check(
      error instanceof SluiceError && error.status === 422 && error.fieldErrors[0]?.field === "toAddress",
      "a bad address is a SluiceError naming toAddress",
    );
  }

  const signedKey = env("SLUICE_SIGNED_KEY");
  const signed = createSluiceClient({
    baseUrl,
    apiKey: signedKey,
    signingKey: readFileSync(env("SLUICE_SIGNING_PEM"), "utf8"),
  });
  const signedId = `ts-signed-${Date.now()}`;
  unwrap(
    await signed.POST("/v1/withdrawals", {
      body: { id: signedId, userId, amount: "0.01", toAddress, network },
    }),
  );
  for (let i = 0; i < 3; i++) {
    const read = unwrap(
      await signed.GET("/v1/withdrawals/{withdrawalId}", { params: { path: { withdrawalId: signedId } } }),
    );
    check(read.id === signedId, `signed read ${i + 1} (identical requests within a second)`);
  }
  const since = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, "+00:00");
  const changed = unwrap(
    await signed.GET("/v1/withdrawals", { params: { query: { userId, updatedSince: since } } }),
  );
  check(
    changed.items.some((w) => w.id === signedId),
    "a signed query with a '+' in it (percent-encoded as sent)",
  );

  const leaked = createSluiceClient({ baseUrl, apiKey: signedKey });
  const refused = await leaked.GET("/v1/withdrawals/{withdrawalId}", {
    params: { path: { withdrawalId: signedId } },
  });
  check(
    refused.response.status === 401 && refused.error?.code === "invalid_signature",
    "the signed key's token alone is refused",
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
