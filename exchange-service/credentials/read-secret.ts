/**
 * Read a secret for `credentials set`: piped on standard input (one trailing newline trimmed), or typed at a
 * terminal with echo turned off. Never from the command line, where it would reach shell history and `ps`.
 */
import type { Readable, Writable } from 'node:stream';
import { MAX_SECRET_BYTES } from './store.js';

interface TtyInput extends Readable {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** Everything piped in, up to a little over the largest secret. */
async function readPiped(input: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_SECRET_BYTES + 2) break; // normaliseSecret says it is too long
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One line typed at a terminal, not echoed. Ctrl-C or Ctrl-D on an empty line cancels. */
function readHidden(input: TtyInput, prompt: Writable, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    prompt.write(question);
    let value = '';
    input.setRawMode?.(true);
    input.resume();
    const done = (error?: Error) => {
      input.setRawMode?.(false);
      input.pause();
      input.off('data', onData);
      prompt.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (data: Buffer | string) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('cancelled; nothing was stored'));
        if (ch === '\u0004') return value === '' ? done(new Error('cancelled; nothing was stored')) : done();
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on('data', onData);
  });
}

export async function readSecret(name: string, input: TtyInput, prompt: Writable): Promise<string> {
  if (input.isTTY) return readHidden(input, prompt, `secret for credential ${name} (input hidden, Enter to finish): `);
  return readPiped(input);
}
