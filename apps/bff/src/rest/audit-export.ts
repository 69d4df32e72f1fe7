import type http from 'node:http'
import type { ControlPlane } from '@alveary/core'
import { CoreError, ZAuditQuery } from '@alveary/core'
import { z } from 'zod'
import { requestToken } from '../http/client'

const ZExportQuery = ZAuditQuery.omit({ limit: true, beforeId: true })

const STATUS: Record<CoreError['code'], number> = { UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, BAD_REQUEST: 400, CONFLICT: 409, QUOTA_EXCEEDED: 409, RATE_LIMITED: 429, PRECONDITION_FAILED: 412 }

function fail(res: http.ServerResponse, status: number, code: string, message: string, extra: object = {}) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ code, message, ...extra }))
}

/**
 * GET /api/v1/audit/export?tenantId=…&actor=…&action=…&result=…&since=…&until=…: the matching
 * audit rows as JSON lines (newest first), streamed page by page. Same filters and access
 * rules as the list (core's audit trail checks them before the first line is sent).
 */
export async function exportAudit(core: ControlPlane, req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
  const token = requestToken(req)
  const actor = token ? await core.auth.resolve(token) : null
  if (!actor) return fail(res, 401, 'UNAUTHORIZED', 'Log in first (Authorization: Bearer <API token>)')
  const parsed = ZExportQuery.safeParse(Object.fromEntries(url.searchParams))
  if (!parsed.success) return fail(res, 422, 'UNPROCESSABLE_CONTENT', 'Invalid filter', { fieldErrors: z.flattenError(parsed.error).fieldErrors })
  const rows = core.audit.export(actor, parsed.data)[Symbol.asyncIterator]()
  let first: IteratorResult<unknown>
  try {
    first = await rows.next()
  } catch (err) {
    if (err instanceof CoreError) return fail(res, STATUS[err.code], err.code, err.message)
    throw err
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-disposition': 'attachment; filename="alveary-audit.jsonl"' })
  for (let r = first; !r.done; r = await rows.next()) {
    if (!res.write(`${JSON.stringify(r.value)}\n`)) await new Promise((ok) => res.once('drain', ok))
  }
  res.end()
}
