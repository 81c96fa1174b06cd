/** Bodies with limits: read a small body whole, and the error for one past its limit. */
import type { Readable } from 'node:stream';

export class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the body is larger than ${limit} bytes`);
    this.name = 'TooLarge';
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
