/**
 * Parsing one workflow file with the `yaml` package, keeping exact positions: every node keeps its source range,
 * a `LineCounter` turns offsets into line:column, and text inside a scalar (a line of a `run: |` block) is located
 * by finding it in the scalar's source, so a finding points at the offending line, not at the `run:` key.
 */
import { LineCounter, isAlias, parseDocument, type Document, type Node } from 'yaml';
import type { Position } from './types.js';

export interface Source {
  /** The file as reported. */
  file: string;
  text: string;
  doc: Document;
  lines: LineCounter;
  /** Per-mapping memo of its entries, per-alias memo of its target (the model looks keys up many times). */
  memo: WeakMap<object, unknown>;
}

export interface SyntaxProblem {
  at: Position;
  message: string;
}

export function parseSource(file: string, text: string): { source: Source; problems: SyntaxProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, version: '1.2', merge: false, keepSourceTokens: false });
  const source: Source = { file, text, doc, lines, memo: new WeakMap() };
  const problems = [...doc.errors, ...doc.warnings].map((e) => ({ at: offsetPosition(source, e.pos[0]), message: e.message.split('\n')[0]!.trim() }));
  return { source, problems };
}

export function offsetPosition(source: Source, offset: number): Position {
  const { line, col } = source.lines.linePos(offset);
  return { line, column: col };
}

/** Where a node starts (an alias: where the alias is written). */
export function nodePosition(source: Source, node: unknown): Position {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? offsetPosition(source, range[0]) : { line: 1, column: 1 };
}

/**
 * The node an alias stands for (other nodes as they are). Remembered per alias: the yaml package finds an anchor by
 * walking the whole document, and the model reaches the same alias many times.
 */
export function resolveNode(source: Source, node: unknown): unknown {
  if (!isAlias(node)) return node;
  const known = source.memo.get(node);
  if (known !== undefined) return known;
  let current: unknown = node;
  for (let i = 0; i < 100 && isAlias(current); i++) current = current.resolve(source.doc);
  if (current !== undefined) source.memo.set(node, current);
  return current;
}

/**
 * Where `needle` is written inside a node's source, searching from the `occurrence`-th match (0-based).
 * Falls back to the node's start when the text is not written literally (escapes in a quoted scalar, folding).
 */
export function positionInNode(source: Source, node: Node | undefined, needle: string, occurrence = 0): Position {
  const range = node?.range;
  if (!range) return { line: 1, column: 1 };
  const slice = source.text.slice(range[0], range[1]);
  let index = -1;
  let from = 0;
  for (let i = 0; i <= occurrence; i++) {
    index = slice.indexOf(needle, from);
    if (index < 0) break;
    from = index + needle.length;
  }
  if (index < 0) index = slice.indexOf(needle);
  return offsetPosition(source, index < 0 ? range[0] : range[0] + index);
}
