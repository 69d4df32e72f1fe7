import { expect, test } from '@playwright/test'
import { LOCAL_NODE, OPERATOR, SECOND_AGENT_PORTS } from '../env'
import { AgentProcess } from './agent-process'
import { login, operatorApi, tenantWithDeveloper, trpc } from './helpers'

/**
 * The ops view of moves: an operator moves a stateful instance (a counter in a local volume)
 * from one node to another from the node's instance list, watches the step timeline live,
 * and reads the downtime the platform measured; the instance keeps its data.
 */
const NODE = 'e2e-mv'
const agent = new AgentProcess(NODE, SECOND_AGENT_PORTS)

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) await testInfo.attach(`agent ${NODE} output`, { body: agent.tail(100), contentType: 'text/plain' })
})
test.afterAll(async () => {
  await agent.cleanup()
})

test('an operator moves a stateful instance from the ops view and watches it complete, downtime shown', async ({ page }) => {
  test.setTimeout(150_000)
  // Arranged through the API: a second node, and a tenant's counter app with a local volume.
  const api = await operatorApi()
  const { token } = await trpc<{ token: string }>(api, 'joinTokens.create', { description: 'moves e2e', ttlHours: 1 })
  agent.start(token)
  const { tenant, member } = await tenantWithDeveloper('moves')
  const nodes = async () => trpc<{ id: string; name: string; state: string }[]>(api, 'nodes.list', undefined, 'query')
  await expect.poll(async () => (await nodes()).filter((n) => (n.name === NODE || n.name === LOCAL_NODE) && n.state === 'ready').length, { timeout: 30_000 }).toBe(2)

  // The member deploys (through the page's own session); the operator reads every tenant afterwards.
  await login(page, member.email, member.password)
  const memberApi = page.request
  const app = await trpc<{ id: string }>(memberApi, 'apps.create', {
    tenantId: tenant.id,
    name: 'counter',
    replicas: 1,
    spec: { command: 'node', args: ['examples/counter/server.js'], cpuMillis: 100, memoryMb: 64, volumes: [{ name: 'data', sizeMb: 32, mountPath: '/data' }] },
  })
  type Inst = { id: string; state: string; node: { id: string; name: string } | null; url: string | null; volumes: { epoch: number }[] }
  const instance = async () => (await trpc<{ instances: Inst[] }>(memberApi, 'apps.get', { tenantId: tenant.id, appId: app.id }, 'query')).instances[0]
  await expect.poll(async () => (await instance())?.state, { timeout: 30_000 }).toBe('running')
  const before = (await instance())!
  const countAt = async (url: string) => ((await (await fetch(url)).json()) as { count: number }).count
  await expect.poll(() => countAt(before.url!).catch(() => 0)).toBeGreaterThan(5)
  const countBefore = await countAt(before.url!)
  const source = before.node!
  const target = source.name === NODE ? LOCAL_NODE : NODE

  // The operator: the source node's page lists the instance with its volume; Move → target → Start.
  await page.context().clearCookies()
  await login(page, OPERATOR.email, OPERATOR.password)
  await page.goto(`/ops/nodes/${source.id}`)
  const row = page.locator(`[data-testid=node-instance-row][data-instance-id="${before.id}"]`)
  await expect(row).toContainText('data (local)')
  await row.getByTestId('move-instance').click()
  await row.getByTestId('move-target').selectOption({ label: target })
  await row.getByTestId('move-start').click()

  // The moves page follows it live: the active move's timeline, then the history row.
  await expect(page).toHaveURL(/\/ops\/moves#[0-9a-f-]{36}$/)
  await page.evaluate(() => ((window as unknown as { __e2eDoc: boolean }).__e2eDoc = true))
  const moveId = page.url().split('#')[1]!
  const timeline = page.locator(`[data-testid=move-timeline][data-move-id="${moveId}"]`)
  await expect(timeline).toBeVisible()
  await expect(timeline.getByTestId('move-step')).toHaveCount(10)
  const done = page.locator(`[data-testid=move-row][data-move-id="${moveId}"]`)
  await expect(done, 'the move finished').toHaveAttribute('data-state', 'succeeded', { timeout: 90_000 })
  // The history row opened by the link shows the whole timeline and the measured downtime.
  await expect(timeline).toHaveAttribute('data-state', 'succeeded')
  await expect(timeline.locator('[data-testid=move-step][data-step=pre-copy]')).toHaveAttribute('data-state', 'done')
  await expect(timeline.locator('[data-testid=move-step][data-step=switch-lb]')).toHaveAttribute('data-state', 'skipped')
  await expect(timeline.getByTestId('move-downtime')).toHaveText(/^\d+(\.\d)? (ms|s)$/)
  await expect(done.getByTestId('move-row-downtime')).toHaveText(/^\d+(\.\d)? (ms|s)$/)
  await expect(page.getByTestId('downtime-stats')).toBeVisible()
  expect(await page.evaluate(() => (window as unknown as { __e2eDoc?: boolean }).__e2eDoc)).toBe(true)
  await page.screenshot({ path: test.info().outputPath('moves.png'), fullPage: true })

  // Same instance, on the target, with its data.
  const after = (await instance())!
  expect(after.id).toBe(before.id)
  expect(after.node?.name).toBe(target)
  expect(after.volumes[0]!.epoch).toBe(before.volumes[0]!.epoch + 1)
  await expect.poll(() => countAt(after.url!).catch(() => 0)).toBeGreaterThanOrEqual(countBefore)
  await api.dispose()
})
