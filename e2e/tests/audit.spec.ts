import { readFile } from 'node:fs/promises'
import { expect, test } from '@playwright/test'
import { login, tenantWithDeveloper, trpc } from './helpers'

const sample = { driver: 'process', command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 16 }

test('the audit trail shows a change with its actor and result, filters, and exports JSON lines', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('aud')
  await login(page, member.email, member.password)
  // Two changes through the console's API with the owner's session: one that works, one refused.
  await trpc(page.request, 'apps.create', { tenantId: tenant.id, name: 'audited', replicas: 0, spec: sample })
  const refused = await page.request.post('/trpc/apps.scale', { data: { json: { tenantId: tenant.id, appId: '00000000-0000-4000-8000-000000000000', replicas: 2 } } })
  expect(refused.status()).toBe(404)

  await page.getByTestId('nav-audit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/audit$`))
  const created = page.locator('[data-testid=audit-row][data-action="apps.create"]')
  await expect(created).toHaveAttribute('data-result', 'ok')
  await expect(created).toContainText(member.email)
  await expect(created).toContainText('audited')
  const scaled = page.locator('[data-testid=audit-row][data-action="apps.scale"]')
  await expect(scaled).toHaveAttribute('data-result', 'NOT_FOUND')
  await expect(scaled).toContainText(member.email)

  // Filters: failed ones only, then an action prefix.
  await page.getByTestId('audit-result').selectOption('failed')
  await expect(created).toHaveCount(0)
  await expect(scaled).toHaveCount(1)
  for (const result of await page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-result')))) expect(result).not.toBe('ok')
  await page.getByTestId('audit-result').selectOption('')
  await page.getByTestId('audit-action').fill('apps.create')
  await expect(scaled).toHaveCount(0)
  await expect(page.getByTestId('audit-row')).toHaveCount(1)

  // Export: the same filter as a JSON-lines download.
  await page.getByTestId('audit-action').fill('apps.')
  await expect(page.getByTestId('audit-export')).toHaveAttribute('href', /action=apps\./)
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()])
  expect(download.suggestedFilename()).toBe('alveary-audit.jsonl')
  const lines = (await readFile((await download.path())!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; result: string; actorEmail: string; tenantId: string })
  expect(lines.map((l) => [l.action, l.result])).toEqual([
    ['apps.scale', 'NOT_FOUND'],
    ['apps.create', 'ok'],
  ])
  expect(new Set(lines.map((l) => `${l.actorEmail} ${l.tenantId}`))).toEqual(new Set([`${member.email} ${tenant.id}`]))
})

test('the console links to the API reference, which renders the OpenAPI document', async ({ page, context }) => {
  const { member } = await tenantWithDeveloper('api')
  await login(page, member.email, member.password)
  const [docs] = await Promise.all([context.waitForEvent('page'), page.getByTestId('nav-api-reference').click()])
  // The console (Next) drops the trailing slash; the BFF serves the viewer at both.
  await expect(docs).toHaveURL(/\/api\/v1\/docs\/?$/)
  await expect(docs.locator('.swagger-ui .title')).toContainText('Alveary API')
  // Operations from the generated document, e.g. deploying an app.
  await expect(docs.locator('.opblock-summary-path[data-path="/tenants/{tenantId}/apps"]').first()).toBeVisible()
})
