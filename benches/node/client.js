'use strict';
// A node-ipc 9.x client of the Node peer (see server.js): connects, says hello, listens with
// `on('op')`, and for every op records (now - t) in nanoseconds. On `end` it writes the
// latencies to --out (little-endian f64 ns, read by the Rust harness into an HDR histogram)
// and prints a RESULT line.

const fs = require('fs');
const ipc = require('node-ipc');
const { parseArgs, memoryFields, say } = require('./common');

const args = parseArgs(process.argv.slice(2));

ipc.config.id = `ringbench-client-${process.pid}`;
ipc.config.silent = true;
ipc.config.maxRetries = 100;
ipc.config.retry = 20;

let lat = new Float64Array(1 << 16);
let count = 0;
let lost = 0;
let nextSeq = 0;
let firstNs = 0n;
let lastNs = 0n;
let greeted = false;

ipc.connectTo('ringbench', args.path, () => {
  const server = ipc.of.ringbench;
  server.on('connect', () => {
    if (!greeted) {
      greeted = true;
      server.emit('hello', { pid: process.pid });
      say('READY');
    }
  });
  server.on('op', (d) => {
    const now = process.hrtime.bigint();
    if (count === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[count] = Number(now - BigInt(d.t));
    if (count === 0) {
      firstNs = now;
    }
    lastNs = now;
    count += 1;
    if (d.s > nextSeq) {
      lost += d.s - nextSeq;
    }
    nextSeq = d.s + 1;
  });
  server.on('end', (d) => {
    fs.writeFileSync(args.out, Buffer.from(lat.buffer, 0, count * 8));
    lost += Math.max(0, d.sent - nextSeq);
    say(
      `RESULT count=${count} lost=${lost} lapped=0 first_ns=${firstNs} last_ns=${lastNs} ` +
        `latfile=${args.out} ${memoryFields()}`,
    );
    ipc.disconnect('ringbench');
    process.exit(0);
  });
});
