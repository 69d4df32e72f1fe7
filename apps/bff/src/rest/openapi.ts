import { ZAuditQuery, ZAuditRecord } from '@alveary/core'
import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi'
import { appRouter } from '../router'
import type { Meta } from '../trpc'

type Operation = { operationId?: string; responses: Record<string, unknown>; parameters?: unknown[] }

/** Procedures by the operationId trpc-to-openapi gives them (the procedure path with dashes). */
export const restMetaByPath = (): Map<string, Meta> =>
  new Map(Object.entries(appRouter._def.procedures).map(([path, p]) => [path, ((p as unknown as { _def: { meta?: Meta } })._def.meta ?? {}) as Meta]))

const error = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } })

/**
 * The OpenAPI 3.1 document of /api/v1, generated from the procedures' own zod schemas and
 * their `openapi` meta (trpc-to-openapi with zod-openapi), then completed with what the
 * generator does not know: our success statuses (201/202 with Location), ETag and If-Match,
 * cursors, and the statuses of our error mapping (rest/status.ts).
 */
export function openApiDocument(version: string): OpenAPIObject {
  const doc = generateOpenApiDocument(appRouter, {
    title: 'Alveary API',
    version,
    description:
      'REST API of Alveary. Authenticate with `Authorization: Bearer <API token>` (sidebar → API tokens) or a session token from POST /auth/login. ' +
      'Errors are JSON `{ message, code, data: { coreCode, fieldErrors, requestId } }`. Lists that page answer `X-Next-Cursor`: pass it as `beforeId` (events, audit) or `afterId` (logs).',
    baseUrl: '/api/v1',
    paths: {
      '/audit/export': {
        get: {
          operationId: 'audit-export',
          summary: 'The audit trail as JSON lines (same filters and access as /audit)',
          tags: ['audit'],
          security: [{ Authorization: [] }],
          requestParams: { query: ZAuditQuery.omit({ limit: true, beforeId: true }) },
          responses: { 200: { description: 'One audit record per line', content: { 'application/x-ndjson': { schema: ZAuditRecord } } } },
        },
      },
    },
  })
  const metas = restMetaByPath()
  const byOperation = new Map([...metas].map(([path, m]) => [path.replace(/\./g, '-'), m]))
  for (const item of Object.values(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item as Record<string, Operation>)) {
      const rest = byOperation.get(op.operationId ?? '')?.rest
      if (!rest && op.operationId === 'audit-export') continue
      if (rest?.status) {
        const ok = op.responses['200'] as { description: string; headers?: Record<string, unknown> }
        delete op.responses['200']
        op.responses[String(rest.status)] = {
          ...ok,
          description: rest.status === 201 ? 'Created' : 'Accepted: the work goes on; follow it at Location',
          ...(rest.location && { headers: { Location: { description: 'Where the result can be read', schema: { type: 'string' } } } }),
        }
      }
      if (rest?.etag) {
        const ok = op.responses['200'] as { headers?: Record<string, unknown> }
        ok.headers = { ...ok.headers, ETag: { description: 'Send it back as If-Match with an update to refuse lost updates', schema: { type: 'string' } } }
      }
      if (rest?.cursor) {
        const ok = op.responses['200'] as { headers?: Record<string, unknown> }
        ok.headers = { ...ok.headers, 'X-Next-Cursor': { description: `The next page: pass it as ${rest.cursor}`, schema: { type: 'string' } } }
      }
      if (rest?.ifMatch) {
        op.parameters = [...(op.parameters ?? []), { name: 'If-Match', in: 'header', required: false, description: 'The ETag you read; the update is refused with 412 when the resource changed since', schema: { type: 'string' } }]
        op.responses['412'] = error('The resource changed since you read it (If-Match)')
      }
      if (method !== 'get') op.responses['409'] = error('Conflict: a name taken, a state that does not allow it, or a quota (code QUOTA_EXCEEDED)')
      op.responses['422'] = error('Invalid input: field errors in data.fieldErrors')
      op.responses['429'] = error('Too many requests: wait Retry-After seconds')
    }
  }
  doc.components = {
    ...doc.components,
    schemas: {
      ...doc.components?.schemas,
      Error: {
        type: 'object',
        required: ['message', 'code'],
        properties: {
          message: { type: 'string' },
          code: { type: 'string', description: 'NOT_FOUND, CONFLICT, UNPROCESSABLE_CONTENT, …' },
          data: {
            type: 'object',
            properties: {
              coreCode: { type: ['string', 'null'] },
              fieldErrors: { type: ['object', 'null'], additionalProperties: { type: 'array', items: { type: 'string' } } },
              requestId: { type: ['string', 'null'] },
              retryAfterSeconds: { type: ['number', 'null'] },
            },
          },
        },
      },
    },
  }
  return doc
}
