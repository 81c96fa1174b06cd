/**
 * The policy cross-check: for each rule of a policy file bound to the repository, its `job_workflow_ref` /
 * `workflow_ref` pins must name workflow files that exist and run on the rule's events; a preview rule should pin a
 * workflow; a production rule's pinned workflows must pass every error rule. Pure: the caller loads the policies
 * (with the service's own loader) and hands over their texts for positions.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { compileGlob } from '../policy/glob.js';
import type { PolicyFile, Rule } from '../policy/types.js';
import { calledWorkflowName } from './check.js';
import type { Workflow } from './model.js';
import { policyWorkflowEvents, policyWorkflowMissing, previewRuleUnpinned, productionWorkflowUnsafe } from './rules/policy-rules.js';
import { findingOf, type Finding, type Position } from './types.js';

export interface PolicySourceText {
  /** The path findings name (the policies directory joined with the file). */
  display: string;
  text: string;
}

export interface PolicyCrossCheck {
  policies: readonly PolicyFile[];
  /** By PolicyFile.file. */
  texts: ReadonlyMap<string, PolicySourceText>;
  /** owner/name, compared case-insensitively. */
  repository: string;
  /** Checked workflows by file name. */
  workflows: ReadonlyMap<string, Workflow>;
  /** Every workflow file read, valid or not: file name → the path findings name (default: the valid ones). */
  paths?: ReadonlyMap<string, string>;
  /** The workflow findings (for production rules). */
  findings: readonly Finding[];
}

const PIN_CLAIMS = ['job_workflow_ref', 'workflow_ref'] as const;
const WORKFLOWS_DIR = '.github/workflows/';

/** A locator for `rules[i].when.claim[j]` in a policy file's text. */
function policyLocator(text: string | undefined): (path: readonly (string | number)[]) => Position {
  if (text === undefined) return () => ({ line: 1, column: 1 });
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  return (path) => {
    let node: unknown = doc.contents;
    let found = node;
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) break;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) node = node.items[segment];
      else break;
      found = node;
    }
    const offset = (found as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
}

/** Events a workflow runs on; a reusable workflow also runs on its local callers' events. */
function effectiveEvents(name: string, workflows: ReadonlyMap<string, Workflow>, seen = new Set<string>()): Set<string> {
  const events = new Set<string>();
  const workflow = workflows.get(name);
  if (!workflow || seen.has(name)) return events;
  seen.add(name);
  for (const t of workflow.triggers) {
    if (t.event !== 'workflow_call') {
      events.add(t.event);
      continue;
    }
    for (const [callerName, caller] of workflows) {
      if (caller.jobs.some((j) => calledWorkflowName(j) === name)) for (const e of effectiveEvents(callerName, workflows, seen)) events.add(e);
    }
  }
  return events;
}

/** Files a workflow calls, transitively (itself included). */
function reachable(name: string, workflows: ReadonlyMap<string, Workflow>, out = new Set<string>()): Set<string> {
  if (out.has(name)) return out;
  out.add(name);
  for (const j of workflows.get(name)?.jobs ?? []) {
    const called = calledWorkflowName(j);
    if (called) reachable(called, workflows, out);
  }
  return out;
}

interface Pin {
  pattern: string;
  index: number;
  /** Workflow file names it matches; undefined when it pins another repository (not checkable here). */
  files?: string[];
}

function pinsOf(patterns: readonly string[], repository: string, names: readonly string[]): Pin[] {
  const repo = repository.toLowerCase();
  return patterns.map((pattern, index) => {
    const at = pattern.indexOf('@');
    const path = at < 0 ? pattern : pattern.slice(0, at);
    const parts = path.split('/');
    const owner = compileGlob(`${parts[0] ?? ''}/${parts[1] ?? ''}`, { caseInsensitive: true });
    if (!owner.test(repo)) return { pattern, index };
    const file = compileGlob(parts.slice(2).join('/'));
    return { pattern, index, files: names.filter((n) => file.test(`${WORKFLOWS_DIR}${n}`)) };
  });
}

function checkRule(policy: PolicyFile, rule: Rule, ruleIndex: number, input: PolicyCrossCheck, locate: (p: readonly (string | number)[]) => Position, display: string): Finding[] {
  const findings: Finding[] = [];
  const paths = input.paths ?? new Map([...input.workflows].map(([name, w]) => [name, w.file]));
  const names = [...paths.keys()].sort();
  const eventCondition = rule.when.find((c) => c.claim === 'event_name');
  const eventGlobs = (eventCondition?.patterns ?? []).map((p) => ({ pattern: p, glob: compileGlob(p) }));
  const label = `${policy.file} rule "${rule.name}" (${rule.context})`;
  const pinConditions = rule.when.filter((c) => (PIN_CLAIMS as readonly string[]).includes(c.claim));

  if (pinConditions.length === 0 && rule.context === 'preview') {
    findings.push(findingOf(previewRuleUnpinned, { file: display, at: locate(['rules', ruleIndex]), what: `${label} pins no workflow (no job_workflow_ref or workflow_ref)` }));
  }
  for (const condition of pinConditions) {
    const pins = pinsOf(condition.patterns, input.repository, names);
    const local = pins.filter((p) => p.files !== undefined);
    let pinMismatch = false;
    for (const pin of local) {
      // A single pattern written as a scalar: the walk stops at the scalar, which is the right place.
      const at = locate(['rules', ruleIndex, 'when', condition.claim, pin.index]);
      if (pin.files!.length === 0) {
        findings.push(findingOf(policyWorkflowMissing, { file: display, at, what: `${label}: ${condition.claim} ${pin.pattern} names no workflow file among ${names.length === 0 ? 'none' : names.join(', ')}` }));
        continue;
      }
      if (eventGlobs.length > 0) {
        // A file that does not parse has no known events: its DSTS001 finding says why.
        for (const file of pin.files!.filter((f) => input.workflows.has(f))) {
          const events = effectiveEvents(file, input.workflows);
          if (![...events].some((e) => eventGlobs.some((g) => g.glob.test(e)))) {
            pinMismatch = true;
            findings.push(findingOf(policyWorkflowEvents, { file: display, at, what: `${label}: ${condition.claim} ${pin.pattern} pins ${file}, which runs on ${[...events].join(', ') || 'no event'}, none of the rule's event_name ${eventCondition!.patterns.join(', ')}` }));
          }
        }
      }
      if (rule.context === 'production') {
        for (const file of pin.files!) {
          const files = new Set([...reachable(file, input.workflows)].map((n) => paths.get(n) ?? n));
          const errors = input.findings.filter((f) => f.severity === 'error' && files.has(f.file));
          if (errors.length === 0) continue;
          const listed = errors.slice(0, 3).map((f) => `${f.file}:${f.line}:${f.column} ${f.rule}`).join('; ');
          findings.push(findingOf(productionWorkflowUnsafe, { file: display, at, what: `${label} trusts ${file} with production, and it has ${errors.length} error finding(s): ${listed}${errors.length > 3 ? '; …' : ''}` }));
        }
      }
    }
    // Every event the rule names must be run by some pinned file (when all pins are in this repository; once per
    // condition: a pin already reported as running none of the events says it; a pinned file that does not parse has
    // unknown events, and its DSTS001 finding says why).
    const pinned = local.flatMap((p) => p.files!);
    if (eventCondition && !pinMismatch && local.length === pins.length && pinned.length > 0 && pinned.every((f) => input.workflows.has(f))) {
      const covered = new Set(local.flatMap((p) => p.files!).flatMap((f) => [...effectiveEvents(f, input.workflows)]));
      eventGlobs.forEach((g, index) => {
        if ([...covered].some((e) => g.glob.test(e))) return;
        const at = locate(['rules', ruleIndex, 'when', 'event_name', index]);
        findings.push(findingOf(policyWorkflowEvents, { file: display, at, what: `${label}: event_name ${g.pattern} is run by none of the workflows its ${condition.claim} pins (${local.map((p) => p.pattern).join(', ')})` }));
      });
    }
  }
  return findings;
}

export function crossCheckPolicies(input: PolicyCrossCheck): Finding[] {
  const findings: Finding[] = [];
  const repo = input.repository.toLowerCase();
  for (const policy of input.policies) {
    if (policy.repository.toLowerCase() !== repo) continue;
    const source = input.texts.get(policy.file);
    const locate = policyLocator(source?.text);
    const display = source?.display ?? policy.file;
    policy.rules.forEach((rule, index) => findings.push(...checkRule(policy, rule, index, input, locate, display)));
  }
  return findings;
}
