/**
 * A fetched JSON document read with a byte cap: the declared length is checked first, then the body is read in
 * chunks and the read cancelled as soon as it passes the cap (a hostile or broken server cannot make us buffer more).
 */
export async function readBoundedJson(response: Response, url: string, maxBytes: number): Promise<unknown> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new Error(`${url} is larger than ${maxBytes} bytes`);
  const reader = response.body?.getReader();
  if (!reader) throw new Error(`${url} sent no body`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`${url} is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}
