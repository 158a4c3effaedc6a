// TAK test peer for Liaison's gateway tests. Usage:
//   node peer.mjs tak|v1 <host:port> <cert.pem> <key.pem> <ca.pem>
// Reads JSON lines {"send": "<event …/>"} on stdin, writes JSON lines on
// stdout: {"ready":true}, {"pong":true}, {"cot": "<event …>"}.
// "tak" uses node-tak (XML over mutual TLS); "v1" negotiates TAK Protocol
// version 1 and sends/receives node-cot to_proto/from_proto frames.
import fs from 'node:fs';
import tls from 'node:tls';
import readline from 'node:readline';
import TAK from '@tak-ps/node-tak';
import { CoTParser } from '@tak-ps/node-cot';

const [mode, addr, certFile, keyFile, caFile] = process.argv.slice(2);
const auth = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), ca: fs.readFileSync(caFile), rejectUnauthorized: true };
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = readline.createInterface({ input: process.stdin });

if (mode === 'tak') {
  const tak = await TAK.connect(new URL(`ssl://${addr}`), auth);
  tak.on('secureConnect', () => out({ ready: true }));
  tak.on('ping', () => out({ pong: true }));
  tak.on('cot', (cot) => out({ cot: CoTParser.to_xml(cot) }));
  tak.on('error', (e) => out({ error: String(e) }));
  lines.on('line', async (l) => { await tak.write([CoTParser.from_xml(JSON.parse(l).send)]); await tak.flush(); });
  lines.on('close', () => { tak.destroy(); process.exit(0); });
} else if (mode === 'v1') {
  const [host, port] = addr.split(':');
  const sock = tls.connect({ host, port: Number(port), ...auth });
  let v1 = false, xmlBuf = '', bin = Buffer.alloc(0);
  const frame = (p) => {
    const len = []; let n = p.length;
    do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; len.push(b); } while (n);
    return Buffer.concat([Buffer.from([0xbf, ...len]), Buffer.from(p)]);
  };
  const readFrames = async () => {
    for (;;) {
      const i = bin.indexOf(0xbf);
      if (i < 0) { bin = Buffer.alloc(0); return; }
      bin = bin.subarray(i); // resync on 0xBF
      let n = 0, shift = 0, j = 1;
      for (; j < bin.length && j <= 10; j++) { n += (bin[j] & 0x7f) * 2 ** shift; shift += 7; if (!(bin[j] & 0x80)) break; }
      if (j >= bin.length || bin.length < j + 1 + n) return;
      const payload = bin.subarray(j + 1, j + 1 + n); bin = bin.subarray(j + 1 + n);
      const cot = await CoTParser.from_proto(payload);
      out({ cot: CoTParser.to_xml(cot) });
    }
  };
  sock.on('data', async (d) => {
    if (v1) { bin = Buffer.concat([bin, d]); return readFrames(); }
    xmlBuf += d.toString('latin1');
    let m;
    while ((m = xmlBuf.match(/<event[\s\S]*?<\/event>/))) {
      const ev = m[0]; xmlBuf = xmlBuf.slice(m.index + ev.length);
      if (ev.includes('t-x-takp-v')) {
        const uid = ev.match(/uid=["']([^"']+)/)[1];
        const now = new Date().toISOString();
        sock.write(`<event version="2.0" uid="${uid}" type="t-x-takp-q" how="m-g" time="${now}" start="${now}" stale="${now}"><point lat="0" lon="0" hae="0" ce="999999" le="999999"/><detail><TakControl><TakRequest version="1"/></TakControl></detail></event>`);
      } else if (ev.includes('t-x-takp-r') && /status=["']true/.test(ev)) {
        v1 = true; out({ ready: true });
        bin = Buffer.from(xmlBuf, 'latin1'); xmlBuf = ''; await readFrames(); return;
      }
    }
  });
  sock.on('error', (e) => out({ error: String(e) }));
  lines.on('line', async (l) => { sock.write(frame(await CoTParser.to_proto(CoTParser.from_xml(JSON.parse(l).send)))); });
  lines.on('close', () => { sock.destroy(); process.exit(0); });
} else {
  console.error('mode must be tak or v1'); process.exit(2);
}
