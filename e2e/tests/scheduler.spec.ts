import { expect, request as pwRequest, test } from '@playwright/test'
import { OPERATOR } from '../env'
import { baseURL, login, tenantWithDeveloper, trpc } from './helpers'

test('the scheduler page charts placements and time to placement per tenant, live', async ({ page }) => {
  // A tenant and its member are set up through the browser, and samples come every 10 s: room for a busy machine.
  test.setTimeout(180_000)
  await login(page, OPERATOR.email, OPERATOR.password)
  await page.goto('/ops/scheduler')
  await expect(page.getByTestId('scheduler-panel')).toHaveAttribute('data-leader', 'true')
  await expect(page.getByTestId('scheduler-charts')).toBeVisible()
  await page.evaluate(() => ((window as unknown as { __e2eDoc: boolean }).__e2eDoc = true))

  // A tenant deploys 3 replicas (through the API: the deploy form is another test's subject).
  const { tenant, member } = await tenantWithDeveloper('sched')
  const api = await pwRequest.newContext({ baseURL })
  await trpc(api, 'auth.login', { email: member.email, password: member.password })
  await trpc(api, 'apps.create', { tenantId: tenant.id, name: 'hello', replicas: 3, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 50, memoryMb: 32 } })
  await api.dispose()

  // The leader writes 10 s samples; the page shows the tenant's row without a reload.
  const row = page.locator(`[data-testid=scheduler-tenant-row][data-tenant="${tenant.slug}"]`)
  await expect(row).toHaveAttribute('data-placed', '3', { timeout: 120_000 })
  expect(Number(await row.getAttribute('data-p99'))).toBeLessThan(60_000)
  expect(await page.evaluate(() => (window as unknown as { __e2eDoc?: boolean }).__e2eDoc)).toBe(true)
  await expect(page.locator('[data-testid=scheduler-charts] .recharts-surface')).toHaveCount(2)

  // Selecting the tenant draws only its lines.
  await row.click()
  await expect(row).toHaveAttribute('aria-selected', 'true')
  await expect(page.getByTestId('scheduler-charts-all')).toBeVisible()
  await page.screenshot({ path: test.info().outputPath('scheduler.png'), fullPage: true })
})
