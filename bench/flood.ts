/**
 * The benchmark's forged-request flood, in its own worker thread: POST /challenge at a fixed total rate from one
 * or more loopback source addresses (`localAddress`), each over a few keep-alive connections with the requests
 * pipelined. Every request is a realistic forgery: the headers the central validator sends (bare and `X-`),
 * claiming a real hotkey, a fresh nonce (re-signed each second, so the nonce check passes and the signature is
 * what fails), a well-formed signature by another key (so the whole sr25519 verification runs), and a body of
 * `bodyBytes`. Bounded: it stops by itself after `maxSeconds`, and a connection whose unsent requests pile up
 * is skipped rather than queued without end.
 */
import net from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { signRequest } from '../lib/protocol/signature.ts';

export interface FloodOptions {
  port: number;
  /** Loopback source addresses the requests come from, spread evenly. */
  addresses: string[];
  /** Requests per second, all addresses together. */
  rps: number;
  /** Keep-alive connections per address. */
  connectionsPerAddress: number;
  /** The hotkey the forgeries claim (SS58). */
  claimedHotkey: string;
  bodyBytes: number;
  /** The flood ends by itself after this long. */
  maxSeconds: number;
}

export interface FloodReport {
  seconds: number;
  sent: number;
  /** Requests not written because their connection had this many bytes unsent already. */
  skipped: number;
  /** Answers by status ("429", "401", ...). */
  answers: Record<string, number>;
  /** Connections closed by the server (or refused) and opened again. */
  reconnects: number;
}

export interface Flood {
  /** Stop sending, close every connection, and report. */
  stop(): Promise<FloodReport>;
}

/** Unsent bytes a connection may hold before its next request is skipped: a few requests' worth. */
const BACKLOG_BYTES = 64 * 1024;
const TICK_MS = 10;
const RECONNECT_DELAY_MS = 50;

/** Starts the flood thread; resolves once its connections are open and it sends. */
export async function startFlood(options: FloodOptions): Promise<Flood> {
  const worker = new Worker(new URL(import.meta.url), { workerData: options });
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  // The report comes on stop() or when maxSeconds ran out, whichever is first.
  const reported = new Promise<FloodReport>((resolve, reject) => {
    worker.on('message', (message: 'started' | FloodReport) => (message === 'started' ? started() : resolve(message)));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the flood thread exited (code ${code}) without a report`)));
  });
  reported.catch(() => {}); // observed by stop(), or by the race below when the thread fails to start
  await Promise.race([running, reported]);
  return {
    async stop() {
      worker.postMessage('stop');
      const report = await reported;
      await worker.terminate();
      return report;
    },
  };
}

/** The raw bytes of one forged request: headers signed by `signer` over `body`, claiming `claimed`. */
function forgedRequest(signer: Parameters<typeof signRequest>[0], claimed: string, body: string, port: number): Buffer {
  const headers = signRequest(signer, 'central', body);
  for (const name of Object.keys(headers)) if (/validator-hotkey$/i.test(name)) headers[name] = claimed;
  const lines = [
    'POST /challenge HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** A JSON challenge body of exactly `bytes` bytes, as a forger would pad it. */
function paddedBody(bytes: number): string {
  const head = JSON.stringify({ challenge_id: 'flood', video_url: 'https://example.com/chunks/flood.mp4', frames: null, pad: '' });
  return head.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, bytes - head.length))}"`);
}

async function runFlood(options: FloodOptions): Promise<void> {
  await cryptoWaitReady();
  const mallory = new Keyring({ type: 'sr25519' }).addFromUri('//Mallory');
  const body = paddedBody(options.bodyBytes);
  let request = forgedRequest(mallory, options.claimedHotkey, body, options.port);
  const report: FloodReport = { seconds: 0, sent: 0, skipped: 0, answers: {}, reconnects: 0 };
  let stopping = false;

  interface Slot {
    address: string;
    socket?: net.Socket;
    /** The tail of what was received, for a status line split across chunks. */
    tail: string;
  }
  const slots: Slot[] = [];
  for (let c = 0; c < options.connectionsPerAddress; c++) for (const address of options.addresses) slots.push({ address, tail: '' });

  const open = (slot: Slot): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: options.port, localAddress: slot.address });
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => {
        const text = slot.tail + chunk.toString('latin1');
        for (const match of text.matchAll(/HTTP\/1\.1 (\d{3}) /g)) report.answers[match[1]] = (report.answers[match[1]] ?? 0) + 1;
        slot.tail = text.slice(-16);
      });
      socket.on('error', () => {}); // a refused or reset connection: 'close' follows
      socket.once('connect', () => resolve());
      socket.once('close', () => {
        resolve();
        if (slot.socket !== socket || stopping) return;
        slot.socket = undefined;
        report.reconnects++;
        setTimeout(() => {
          if (!stopping) void open(slot);
        }, RECONNECT_DELAY_MS);
      });
      slot.socket = socket;
      slot.tail = '';
    });
  await Promise.all(slots.map(open));

  const startedAt = performance.now();
  let next = 0;
  const resign = setInterval(() => {
    request = forgedRequest(mallory, options.claimedHotkey, body, options.port); // a fresh nonce each second
  }, 1000);
  const tick = setInterval(() => {
    const elapsed = (performance.now() - startedAt) / 1000;
    if (elapsed >= options.maxSeconds) {
      finish();
      return;
    }
    const due = Math.floor(elapsed * options.rps) - report.sent - report.skipped;
    for (let i = 0; i < due; i++) {
      const slot = slots[next++ % slots.length];
      const socket = slot.socket;
      if (!socket || socket.connecting || !socket.writable || socket.writableLength > BACKLOG_BYTES) {
        report.skipped++;
        continue;
      }
      socket.write(request);
      report.sent++;
    }
  }, TICK_MS);

  function finish(): void {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    clearInterval(resign);
    report.seconds = (performance.now() - startedAt) / 1000;
    for (const slot of slots) slot.socket?.destroy();
    parentPort!.postMessage(report);
  }

  parentPort!.on('message', (message) => {
    if (message === 'stop') finish();
  });
  parentPort!.postMessage('started');
}

if (!isMainThread) {
  void runFlood(workerData as FloodOptions);
}
