/** Streams with limits: count bytes and stop at a maximum; read a small body whole. */
import { Transform, type Readable, type TransformCallback } from 'node:stream';

export class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the body is larger than ${limit} bytes`);
    this.name = 'TooLarge';
  }
}

/** Passes bytes through, counting them; fails with TooLarge past `limit`. */
export class Meter extends Transform {
  bytes = 0;
  constructor(private readonly limit = Number.POSITIVE_INFINITY) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return done(new TooLarge(this.limit));
    done(null, chunk);
  }
}

/** The whole body, or TooLarge once it passes `limit` (reading stops there). */
export async function readBounded(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new TooLarge(limit);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, size);
}
