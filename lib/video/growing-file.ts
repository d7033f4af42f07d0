/**
 * A file that is read while it is being written: the download appends at network speed, and ffmpeg's stdin is
 * fed from it as the bytes land. The download never waits for ffmpeg (a slow model would otherwise stall the
 * socket until the whole-download timeout), memory stays at one read chunk, and the complete file is there
 * for the fallback decode (an mp4 whose index comes last cannot be decoded from a stream).
 */
import { type FileHandle, open } from 'node:fs/promises';

const READ_CHUNK = 256 * 1024;

export class GrowingFile {
  readonly path: string;
  private readonly handle: FileHandle;
  private size = 0;
  private state: 'open' | 'complete' | 'failed' = 'open';
  private failure: unknown;
  private waiters: Array<() => void> = [];

  private constructor(file: string, handle: FileHandle) {
    this.path = file;
    this.handle = handle;
  }

  /** Creates the file (it must not exist yet). */
  static async create(file: string): Promise<GrowingFile> {
    return new GrowingFile(file, await open(file, 'wx+'));
  }

  get bytes(): number {
    return this.size;
  }

  get complete(): boolean {
    return this.state === 'complete';
  }

  /** Writes `chunk` at the end; readers see it once this resolves. */
  async append(chunk: Uint8Array): Promise<void> {
    let written = 0;
    while (written < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, written, chunk.byteLength - written, this.size + written);
      written += bytesWritten;
    }
    this.size += written;
    this.wake();
  }

  /**
   * Writes `chunk` at `position` without moving the end (the range reader puts the file's tail there, fetched
   * apart from the front, which stops before it). Readers of read() never see these bytes.
   */
  async writeAt(chunk: Uint8Array, position: number): Promise<void> {
    let written = 0;
    while (written < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, written, chunk.byteLength - written, position + written);
      written += bytesWritten;
    }
  }

  /** Up to `length` bytes at `position` (fewer at the end of the file). */
  async readAt(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  }

  /** Resolves true once the byte at `position` is written, false if the writer ended before it (failed or not). */
  async reach(position: number): Promise<boolean> {
    while (this.size <= position && this.state === 'open') await this.changed();
    return this.size > position;
  }

  /** No more bytes: readers end at the current size. */
  finish(): void {
    if (this.state === 'open') this.state = 'complete';
    this.wake();
  }

  /** The writer failed: readers throw `error` once they reach the end of what was written. */
  fail(error: unknown): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = error;
    this.wake();
  }

  /** Resolves when there is at least one byte (true) or the file ended empty (false); throws on failure. */
  async hasData(): Promise<boolean> {
    while (this.size === 0 && this.state === 'open') await this.changed();
    if (this.size === 0 && this.state === 'failed') throw this.failure;
    return this.size > 0;
  }

  /** Every byte from the start, waiting for more while the writer is open. */
  async *read(): AsyncGenerator<Buffer> {
    let position = 0;
    for (;;) {
      if (position < this.size) {
        const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.size - position));
        const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) throw new Error(`${this.path} is shorter than the ${this.size} bytes written`);
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      } else if (this.state === 'open') {
        await this.changed();
      } else if (this.state === 'failed') {
        throw this.failure;
      } else {
        return;
      }
    }
  }

  async close(): Promise<void> {
    this.fail(new Error('closed'));
    await this.handle.close().catch(() => {});
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
