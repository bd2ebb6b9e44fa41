#!/usr/bin/env node
// Compile the Solidity sources of contracts/ with the pinned solc-js (tools/node_modules/solc)
// and write the committed artifacts, one JSON file per contract.
//
//   DemoToken.sol                 DemoToken: the dev chain's ERC-20. Its artifact is written to
//                                 contracts/DemoToken.json and to the packaged copy
//                                 src/sluice/devnet/DemoToken.json (`sluice dev` deploys it).
//   BatchPayout.sol               BatchPayout: pays many withdrawals in one transaction. Compiled
//                                 for the "paris" EVM (no PUSH0: it deploys on chains from before
//                                 Shanghai), and its artifact also has `deployedBytecode` (the
//                                 runtime code, whose hash Sluice verifies). Written to
//                                 contracts/BatchPayout.json and src/sluice/chains/BatchPayout.json.
//   test/RevertingReceivers.sol   RevertingReceiver, InvalidReceiver  } test only: artifacts in
//   test/HostileTokens.sol        FalseToken, BlockingToken            } contracts/test/ only,
//   test/NoReturnToken.sol        NoReturnToken                        } never packaged
//   test/ReentrantReceiver.sol    ReentrantReceiver                    } (`sluice.testing.contracts`
//                                                                      } deploys them).
//
// Usage (from anywhere):
//   node contracts/build.mjs           write every artifact (and DemoToken's packaged copy)
//   node contracts/build.mjs --stdout  print {"<contract>": <artifact>, ...} to stdout, write nothing
//   node contracts/build.mjs --check   write nothing; exit 1 if any committed copy differs from a
//                                      fresh compile
//
// The output is deterministic: fixed compiler, fixed settings, each source is given to solc
// under a fixed name (its path relative to contracts/, not its absolute path), and the metadata
// hash is left out of the bytecode (bytecodeHash "none"). Running the build twice gives
// identical bytes.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const OPTIMIZER_RUNS = 200;
// The default EVM version; a source may name another (`evmVersion`).
const EVM_VERSION = 'cancun';

const contractsDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(contractsDir, '..');
const packageDir = join(repoRoot, 'src', 'sluice');

// Each source (relative to contracts/), its contracts, and where each artifact goes. An artifact
// is written beside its source; `packaged` (a directory of src/sluice/) adds the copy the package
// ships. `evmVersion` overrides EVM_VERSION for that source; `deployedBytecode` adds the runtime
// code to its artifacts (after `bytecode`).
const SOURCES = [
  { source: 'DemoToken.sol', contracts: ['DemoToken'], packaged: 'devnet' },
  {
    source: 'BatchPayout.sol',
    contracts: ['BatchPayout'],
    packaged: 'chains',
    evmVersion: 'paris',
    deployedBytecode: true,
  },
  { source: 'test/RevertingReceivers.sol', contracts: ['RevertingReceiver', 'InvalidReceiver'] },
  { source: 'test/HostileTokens.sol', contracts: ['FalseToken', 'BlockingToken'] },
  { source: 'test/NoReturnToken.sol', contracts: ['NoReturnToken'] },
  { source: 'test/ReentrantReceiver.sol', contracts: ['ReentrantReceiver'] },
];

function outputPaths(entry, contractName) {
  const file = `${contractName}.json`;
  const paths = [join(contractsDir, dirname(entry.source), file)];
  if (entry.packaged) {
    paths.push(join(packageDir, entry.packaged, file));
  }
  return paths;
}

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

/** Compile one source; returns {contractName: artifactText}. */
function compile(entry) {
  const sourceName = entry.source;
  const sourceBytes = readFileSync(join(contractsDir, sourceName));
  const evmVersion = entry.evmVersion ?? EVM_VERSION;
  const selected = ['abi', 'evm.bytecode.object'];
  if (entry.deployedBytecode) {
    selected.push('evm.deployedBytecode.object');
  }
  const input = {
    language: 'Solidity',
    sources: { [sourceName]: { content: sourceBytes.toString('utf8') } },
    settings: {
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      evmVersion,
      metadata: { bytecodeHash: 'none' },
      outputSelection: {
        [sourceName]: Object.fromEntries(
          entry.contracts.map((name) => [name, selected]),
        ),
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));

  const diagnostics = output.errors ?? [];
  for (const diagnostic of diagnostics) {
    console.error(diagnostic.formattedMessage ?? diagnostic.message);
  }
  if (diagnostics.some((d) => d.severity === 'error')) {
    throw new Error(`compilation of ${sourceName} failed`);
  }

  const sourceSha256 = createHash('sha256').update(sourceBytes).digest('hex');
  const artifacts = {};
  for (const contractName of entry.contracts) {
    const contract = output.contracts?.[sourceName]?.[contractName];
    if (!contract?.evm?.bytecode?.object) {
      throw new Error(`solc produced no bytecode for ${contractName} (${basename(sourceName)})`);
    }
    const artifact = {
      contractName,
      compiler: {
        version: solc.version(),
        optimizer: true,
        runs: OPTIMIZER_RUNS,
        evmVersion,
      },
      sourceSha256,
      abi: contract.abi,
      bytecode: `0x${contract.evm.bytecode.object}`,
    };
    if (entry.deployedBytecode) {
      if (!contract.evm.deployedBytecode?.object) {
        throw new Error(`solc produced no runtime code for ${contractName} (${basename(sourceName)})`);
      }
      artifact.deployedBytecode = `0x${contract.evm.deployedBytecode.object}`;
    }
    artifacts[contractName] = artifact;
  }
  return artifacts;
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

const artifacts = {};
const files = []; // [path, text]
for (const entry of SOURCES) {
  for (const [contractName, artifact] of Object.entries(compile(entry))) {
    artifacts[contractName] = artifact;
    const text = `${JSON.stringify(artifact, null, 2)}\n`;
    for (const path of outputPaths(entry, contractName)) {
      files.push([path, text]);
    }
  }
}

if (mode === '--stdout') {
  process.stdout.write(`${JSON.stringify(artifacts, null, 2)}\n`);
} else if (mode === '--check') {
  const stale = files.filter(([path, text]) => readOrNull(path) !== text);
  for (const [path] of stale) {
    console.error(`${relative(repoRoot, path)} is stale: run \`node contracts/build.mjs\``);
  }
  process.exit(stale.length === 0 ? 0 : 1);
} else {
  for (const [path, text] of files) {
    writeFileSync(path, text);
    console.error(`wrote ${relative(repoRoot, path)}`);
  }
}
