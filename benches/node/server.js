'use strict';
// The original stack as a peer of the ring: one node-ipc 9.x server that `broadcast`s every op
// to N clients subscribed with `on(type)`. Started by `cargo bench --bench fanout`, which
// passes the socket path, the op body (a JSON file), the pace and the reader count.
//
// Protocol with the harness (same as its Rust writers): print READY when listening, start
// sending once GO arrives on stdin and every client has said hello, send for --secs seconds
// (paced: record i at start + i/rate; unpaced: --batch records back to back), broadcast `end`
// with the count sent, print a RESULT line, exit when the clients are gone or stdin closes.
//
// Every message is {t: send time (process.hrtime.bigint(), CLOCK_MONOTONIC ns, as a string),
// s: sequence number, op: the op body}.

const fs = require('fs');
const ipc = require('node-ipc');
const { parseArgs, memoryFields, say } = require('./common');

const args = parseArgs(process.argv.slice(2));
const body = JSON.parse(fs.readFileSync(args.body, 'utf8'));
const readers = Number(args.readers);
const rate = Number(args.rate);
const secs = Number(args.secs);
const batch = Math.max(1, Number(args.batch));

// Run the send loop in slices so that the event loop can flush the sockets between them.
const SLICE_NS = 1000000n;
// Stop queueing while any client socket holds this much unsent data (node-ipc itself has no
// backpressure: without this an unpaced run would buffer without bound).
const HIGH_WATER = 1 << 20;
// Sleep when the next record is due later than this; spin for the last stretch.
const SPIN_NS = 30000n;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

ipc.config.id = 'ringbench';
ipc.config.silent = true;

let hellos = 0;
let go = false;
let started = false;
let clientsLeft = readers;

ipc.serve(args.path, () => {
  ipc.server.on('hello', () => {
    hellos += 1;
    maybeStart();
  });
  ipc.server.on('socket.disconnected', () => {
    clientsLeft -= 1;
    if (clientsLeft <= 0 && started) {
      process.exit(0);
    }
  });
  say('READY');
});
ipc.server.start();

process.stdin.on('data', (d) => {
  if (String(d).includes('GO')) {
    go = true;
    maybeStart();
  }
});
process.stdin.on('end', () => process.exit(0));

function maybeStart() {
  if (go && hellos >= readers && !started) {
    started = true;
    run();
  }
}

function backlogged() {
  const sockets = ipc.server.sockets;
  for (let i = 0; i < sockets.length; i += 1) {
    if (sockets[i].writableLength > HIGH_WATER) {
      return true;
    }
  }
  return false;
}

function send(seq) {
  ipc.server.broadcast('op', { t: String(process.hrtime.bigint()), s: seq, op: body });
}

function run() {
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(secs * 1e9));
  let seq = 0;
  const step = () => {
    const sliceEnd = process.hrtime.bigint() + SLICE_NS;
    for (;;) {
      const now = process.hrtime.bigint();
      if (now >= end) {
        finish(seq, now - start);
        return;
      }
      if (now >= sliceEnd || backlogged()) {
        break;
      }
      if (rate > 0) {
        const due = start + (BigInt(seq) * 1000000000n) / BigInt(rate);
        if (due >= end) {
          finish(seq, now - start);
          return;
        }
        const left = due - now;
        if (left > 0n) {
          if (left > SPIN_NS) {
            Atomics.wait(sleeper, 0, 0, Number(left - SPIN_NS) / 1e6);
          }
          continue;
        }
        send(seq);
        seq += 1;
      } else {
        for (let i = 0; i < batch; i += 1) {
          send(seq);
          seq += 1;
        }
      }
    }
    setImmediate(step);
  };
  step();
}

function finish(sent, elapsed) {
  ipc.server.broadcast('end', { sent });
  say(`RESULT sent=${sent} elapsed_ns=${elapsed} ${memoryFields()}`);
}
