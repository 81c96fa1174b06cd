/**
 * The JSON Schema of policy files, generated from the zod schema, published at schema/policy.schema.json
 * so editors autocomplete and check policy files (`# yaml-language-server: $schema=...`).
 *
 * Regenerate after changing schema.ts (a test fails while the committed file is stale):
 *   npm run build
 *   npm exec -- node -e "import('./build/exchange-service/policy/json-schema.js').then((m) => process.stdout.write(m.policyJsonSchemaText()))" > schema/policy.schema.json
 */
import { z } from 'zod';
import { REPO_PROPERTY_KEY } from './condition.js';
import { DEFAULT_MAX_TTL, maxTtlSchema, policyFileSchema, policySchemaMetadata, whenSchema } from './schema.js';
import { formatDuration } from './duration.js';

export function policyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(policyFileSchema, {
    target: 'draft-2020-12',
    io: 'input',
    metadata: policySchemaMetadata,
    override: ({ zodSchema, jsonSchema }) => {
      // zod describes `when` as known keys plus "any other key"; say what the validator enforces instead:
      // the known claims, `repo_property_<name>`, and nothing else (so editors flag typos too).
      if (zodSchema === whenSchema && typeof jsonSchema.additionalProperties === 'object') {
        jsonSchema.patternProperties = { [REPO_PROPERTY_KEY.source]: jsonSchema.additionalProperties };
        jsonSchema.additionalProperties = false;
      }
      if (zodSchema === maxTtlSchema) jsonSchema.default = formatDuration(DEFAULT_MAX_TTL);
    },
  }) as Record<string, unknown>;
  return schema;
}

/** The committed file's exact text. */
export function policyJsonSchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}
