'use strict';
// Helpers shared by the Node peer's server and client (see server.js).

const fs = require('fs');

// `--key value` pairs from the command line.
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

// VmHWM, RssAnon and RssShmem of this process, KiB, as report fields.
function memoryFields() {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/status', 'utf8');
  } catch (_) {
    // Not Linux: report zeros.
  }
  const field = (name) => {
    const m = text.match(new RegExp(`^${name}:\\s*(\\d+)`, 'm'));
    return m ? m[1] : '0';
  };
  return `hwm_kib=${field('VmHWM')} anon_kib=${field('RssAnon')} shmem_kib=${field('RssShmem')}`;
}

// Print a line for the Rust harness (stdout is a pipe: writes are synchronous on Linux).
function say(line) {
  process.stdout.write(`${line}\n`);
}

module.exports = { parseArgs, memoryFields, say };
