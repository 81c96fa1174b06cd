/**
 * A workflow file as the rules see it: triggers, permissions, jobs and steps, each value with the node it came from
 * so that findings carry exact positions. Aliases are resolved (GitHub Actions accepts YAML anchors); a value
 * reached through an alias remembers where the alias is written.
 */
import { isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml';
import { nodePosition, positionInNode, resolveNode, type Source } from './source.js';
import type { Position } from './types.js';

/** A scalar value (numbers and booleans as their text) and where it is. */
export interface Text {
  value: string;
  node: Node;
  pos: Position;
  /** Set when the value was reached through an alias: where the alias is written. */
  alias?: Position;
}

export type PermissionLevel = 'write' | 'read' | 'none';

/** A `permissions:` value: `write-all`, `read-all`, or a mapping (`{}` is an empty mapping). */
export interface Permissions {
  kind: 'write-all' | 'read-all' | 'map' | 'invalid';
  /** The `id-token` scope this grants. */
  idToken: PermissionLevel;
  pos: Position;
}

export interface Trigger {
  event: string;
  pos: Position;
  /** `workflow_run`: the `workflows:` filter, when present. */
  workflows?: string[];
  /** `types:` when present. */
  types?: string[];
}

export interface Step {
  /** 0-based index in the job. */
  index: number;
  pos: Position;
  id?: string;
  name?: string;
  uses?: Text;
  run?: Text;
  if?: Text;
  with: Map<string, Text>;
  env: Map<string, Text>;
}

export interface Job {
  id: string;
  /** The job's key. */
  pos: Position;
  permissions?: Permissions;
  environment?: Text;
  if?: Text;
  needs: string[];
  /** A reusable workflow call (`uses:` at job level). */
  uses?: Text;
  with: Map<string, Text>;
  env: Map<string, Text>;
  /** Every string anywhere under `strategy.matrix`, by its top-level matrix key. */
  matrix: Map<string, Text[]>;
  steps: Step[];
}

export interface Workflow {
  source: Source;
  file: string;
  name?: string;
  /** Position of the `on:` key (or the document start). */
  onPos: Position;
  triggers: Trigger[];
  permissions?: Permissions;
  env: Map<string, Text>;
  jobs: Job[];
  /** Why the file is not a workflow, when it is not. */
  invalid?: { pos: Position; message: string };
}

interface Entry {
  key: string;
  keyNode: Node;
  value: unknown;
}

function entries(source: Source, node: unknown): Entry[] {
  const map = resolveNode(source, node);
  if (!isMap(map)) return [];
  const memo = source.memo.get(map) as Entry[] | undefined;
  if (memo) return memo;
  const list: Entry[] = [];
  for (const pair of (map as YAMLMap).items as Pair[]) {
    const key = resolveNode(source, pair.key);
    if (isScalar(key)) list.push({ key: String(key.value), keyNode: pair.key as Node, value: pair.value });
  }
  source.memo.set(map, list);
  return list;
}

function entry(source: Source, node: unknown, key: string): Entry | undefined {
  return entries(source, node).find((e) => e.key === key);
}

function textOf(source: Source, node: unknown): Text | undefined {
  const resolved = resolveNode(source, node);
  if (!isScalar(resolved) || resolved.value === null || resolved.value === undefined) return undefined;
  const value = resolved.value;
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  const text: Text = { value: String(value), node: resolved, pos: nodePosition(source, resolved) };
  if (resolved !== node) text.alias = nodePosition(source, node);
  return text;
}

/** A mapping's scalar values by key; `lowerKeys` for action inputs, which GitHub reads case-insensitively (`Ref:` is `ref`). */
function textMap(source: Source, node: unknown, lowerKeys = false): Map<string, Text> {
  const out = new Map<string, Text>();
  for (const e of entries(source, node)) {
    const t = textOf(source, e.value);
    if (t) out.set(lowerKeys ? e.key.toLowerCase() : e.key, t);
  }
  return out;
}

function stringList(source: Source, node: unknown): string[] {
  const resolved = resolveNode(source, node);
  if (isSeq(resolved)) return resolved.items.flatMap((i) => textOf(source, i)?.value ?? []);
  const t = textOf(source, resolved);
  return t ? [t.value] : [];
}

/** At most this many scalars are collected from one matrix: aliases can make a small file describe a huge tree. */
const MAX_MATRIX_VALUES = 10_000;

/** Every scalar under a node (matrix values may be nested lists and mappings). */
function allTexts(source: Source, node: unknown, out: Text[] = [], depth = 0): Text[] {
  if (depth > 20 || out.length >= MAX_MATRIX_VALUES) return out;
  const resolved = resolveNode(source, node);
  if (isMap(resolved)) for (const e of entries(source, resolved)) allTexts(source, e.value, out, depth + 1);
  else if (isSeq(resolved)) for (const item of resolved.items) allTexts(source, item, out, depth + 1);
  else {
    const t = textOf(source, resolved);
    if (t) out.push(t);
  }
  return out;
}

export function permissionsOf(source: Source, node: unknown): Permissions {
  const resolved = resolveNode(source, node);
  const pos = nodePosition(source, resolved);
  const t = textOf(source, resolved);
  if (t) {
    if (t.value === 'write-all') return { kind: 'write-all', idToken: 'write', pos };
    if (t.value === 'read-all') return { kind: 'read-all', idToken: 'read', pos };
    return { kind: 'invalid', idToken: 'none', pos };
  }
  if (isMap(resolved)) {
    const idToken = textOf(source, entry(source, resolved, 'id-token')?.value)?.value;
    return { kind: 'map', idToken: idToken === 'write' ? 'write' : idToken === 'read' ? 'read' : 'none', pos };
  }
  // `permissions:` with no value is an empty mapping to GitHub: nothing granted.
  return { kind: 'map', idToken: 'none', pos };
}

function triggersOf(source: Source, node: unknown): Trigger[] {
  const resolved = resolveNode(source, node);
  if (isSeq(resolved)) {
    return resolved.items.flatMap((item) => {
      const t = textOf(source, item);
      return t ? [{ event: t.value, pos: t.pos }] : [];
    });
  }
  const single = textOf(source, resolved);
  if (single) return [{ event: single.value, pos: single.pos }];
  return entries(source, resolved).map((e) => {
    const trigger: Trigger = { event: e.key, pos: nodePosition(source, e.keyNode) };
    const workflows = entry(source, e.value, 'workflows');
    if (workflows) trigger.workflows = stringList(source, workflows.value);
    const types = entry(source, e.value, 'types');
    if (types) trigger.types = stringList(source, types.value);
    return trigger;
  });
}

function stepOf(source: Source, node: unknown, index: number): Step {
  const get = (key: string) => textOf(source, entry(source, node, key)?.value);
  const step: Step = {
    index,
    pos: nodePosition(source, resolveNode(source, node)),
    with: textMap(source, entry(source, node, 'with')?.value, true),
    env: textMap(source, entry(source, node, 'env')?.value),
  };
  const id = get('id');
  if (id) step.id = id.value;
  const name = get('name');
  if (name) step.name = name.value;
  const uses = get('uses');
  if (uses) step.uses = uses;
  const run = get('run');
  if (run) step.run = run;
  const cond = get('if');
  if (cond) step.if = cond;
  return step;
}

function jobOf(source: Source, e: Entry): Job {
  const get = (key: string) => entry(source, e.value, key);
  const job: Job = {
    id: e.key,
    pos: nodePosition(source, e.keyNode),
    needs: stringList(source, get('needs')?.value),
    with: textMap(source, get('with')?.value, true),
    env: textMap(source, get('env')?.value),
    matrix: new Map(),
    steps: [],
  };
  const permissions = get('permissions');
  if (permissions) job.permissions = permissionsOf(source, permissions.value);
  const environment = get('environment');
  if (environment) {
    // `environment: name` or `environment: { name: …, url: … }`.
    const env = textOf(source, environment.value) ?? textOf(source, entry(source, environment.value, 'name')?.value);
    if (env) job.environment = env;
  }
  const cond = textOf(source, get('if')?.value);
  if (cond) job.if = cond;
  const uses = textOf(source, get('uses')?.value);
  if (uses) job.uses = uses;
  const matrix = entry(source, get('strategy')?.value, 'matrix');
  if (matrix) {
    for (const m of entries(source, matrix.value)) {
      if (m.key === 'include' || m.key === 'exclude') {
        // `include: [{ key: value }]` defines (or extends) `matrix.key`.
        const items = resolveNode(source, m.value);
        for (const item of isSeq(items) ? items.items : []) {
          for (const e of entries(source, item)) job.matrix.set(e.key, allTexts(source, e.value, job.matrix.get(e.key) ?? []));
        }
      } else job.matrix.set(m.key, allTexts(source, m.value, job.matrix.get(m.key) ?? []));
    }
  }
  const steps = resolveNode(source, get('steps')?.value);
  if (isSeq(steps)) job.steps = steps.items.map((item, index) => stepOf(source, item, index));
  return job;
}

export function workflowOf(source: Source): Workflow {
  const root = source.doc.contents;
  const workflow: Workflow = { source, file: source.file, onPos: { line: 1, column: 1 }, triggers: [], env: new Map(), jobs: [] };
  if (!isMap(resolveNode(source, root))) {
    workflow.invalid = { pos: nodePosition(source, root), message: 'the file is not a mapping with on: and jobs:' };
    return workflow;
  }
  const on = entry(source, root, 'on');
  if (on) {
    workflow.onPos = nodePosition(source, on.keyNode);
    workflow.triggers = triggersOf(source, on.value);
  }
  const name = textOf(source, entry(source, root, 'name')?.value);
  if (name) workflow.name = name.value;
  const permissions = entry(source, root, 'permissions');
  if (permissions) workflow.permissions = permissionsOf(source, permissions.value);
  workflow.env = textMap(source, entry(source, root, 'env')?.value);
  const jobs = entry(source, root, 'jobs');
  workflow.jobs = entries(source, jobs?.value).map((e) => jobOf(source, e));
  if (!on || !jobs) {
    workflow.invalid = { pos: nodePosition(source, root), message: `the file has no ${!on ? 'on:' : 'jobs:'} key, so it is not a workflow GitHub can run` };
  }
  return workflow;
}

/** Where `needle` is written inside a text's source (the `occurrence`-th time). */
export function positionIn(source: Source, text: Text, needle: string, occurrence = 0): Position {
  return positionInNode(source, text.node, needle, occurrence);
}

/** ` (through the alias at L:C)` when the value was reached through an alias. */
export function viaAlias(text: Text): string {
  return text.alias ? ` (reached through the alias at ${text.alias.line}:${text.alias.column})` : '';
}
