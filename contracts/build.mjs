#!/usr/bin/env node
// Compile contracts/DemoToken.sol with the pinned solc-js (tools/node_modules/solc)
// and write the committed artifact.
//
// Usage (from anywhere):
//   node contracts/build.mjs           write contracts/DemoToken.json and its packaged
//                                      copy src/sluice/devnet/DemoToken.json
//   node contracts/build.mjs --stdout  print the artifact to stdout, write nothing
//   node contracts/build.mjs --check   write nothing; exit 1 if either committed copy
//                                      differs from a fresh compile
//
// The output is deterministic: fixed compiler, fixed settings, the source is given to
// solc under a fixed name (not its absolute path), and the metadata hash is left out
// of the bytecode (bytecodeHash "none"). Running the build twice gives identical bytes.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONTRACT_NAME = 'DemoToken';
const SOURCE_NAME = `${CONTRACT_NAME}.sol`;
const OPTIMIZER_RUNS = 200;
const EVM_VERSION = 'cancun';

const contractsDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(contractsDir, '..');
const sourcePath = join(contractsDir, SOURCE_NAME);
const outputPaths = [
  join(contractsDir, `${CONTRACT_NAME}.json`),
  join(repoRoot, 'src', 'sluice', 'devnet', `${CONTRACT_NAME}.json`),
];

// Resolve solc from the pinned tools, relative to this script rather than the cwd.
const requireFromTools = createRequire(join(repoRoot, 'tools', 'package.json'));
let solc;
try {
  solc = requireFromTools('solc');
} catch (error) {
  console.error(`cannot load solc from ${join(repoRoot, 'tools', 'node_modules')}: run \`make tools\``);
  console.error(String(error));
  process.exit(2);
}

function compile() {
  const sourceBytes = readFileSync(sourcePath);
  const input = {
    language: 'Solidity',
    sources: { [SOURCE_NAME]: { content: sourceBytes.toString('utf8') } },
    settings: {
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      evmVersion: EVM_VERSION,
      metadata: { bytecodeHash: 'none' },
      outputSelection: { [SOURCE_NAME]: { [CONTRACT_NAME]: ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));

  const diagnostics = output.errors ?? [];
  for (const diagnostic of diagnostics) {
    console.error(diagnostic.formattedMessage ?? diagnostic.message);
  }
  if (diagnostics.some((d) => d.severity === 'error')) {
    throw new Error(`compilation of ${SOURCE_NAME} failed`);
  }

  const contract = output.contracts?.[SOURCE_NAME]?.[CONTRACT_NAME];
  if (!contract?.evm?.bytecode?.object) {
    throw new Error(`solc produced no bytecode for ${CONTRACT_NAME}`);
  }

  const artifact = {
    contractName: CONTRACT_NAME,
    compiler: {
      version: solc.version(),
      optimizer: true,
      runs: OPTIMIZER_RUNS,
      evmVersion: EVM_VERSION,
    },
    sourceSha256: createHash('sha256').update(sourceBytes).digest('hex'),
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
  };
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

function readOrNull(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

const args = process.argv.slice(2);
const mode = args[0] ?? '--write';
if (args.length > 1 || !['--write', '--stdout', '--check'].includes(mode)) {
  console.error('usage: node contracts/build.mjs [--write | --stdout | --check]');
  process.exit(2);
}

const text = compile();
if (mode === '--stdout') {
  process.stdout.write(text);
} else if (mode === '--check') {
  const stale = outputPaths.filter((path) => readOrNull(path) !== text);
  for (const path of stale) {
    console.error(`${relative(repoRoot, path)} is stale: run \`node contracts/build.mjs\``);
  }
  process.exit(stale.length === 0 ? 0 : 1);
} else {
  for (const path of outputPaths) {
    writeFileSync(path, text);
    console.error(`wrote ${relative(repoRoot, path)}`);
  }
}
