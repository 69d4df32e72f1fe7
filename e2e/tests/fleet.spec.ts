import { expect, test, type Browser, type Page } from '@playwright/test'
import { LIFECYCLE, LOCAL_NODE, OPERATOR, SECOND_AGENT_PORTS } from '../env'
import { AgentProcess } from './agent-process'
import { baseURL, login, operatorApi, tenantWithDeveloper, trpc } from './helpers'

/**
 * A second node: placement over two nodes, cordon and drain from the ops view, and a lost
 * node (agent killed) whose instances come back on the other node. The tests share the
 * second agent, the tenant and the app, so they run in order; each step is its own test,
 * so each has the whole test timeout for what it waits for, however slow the step before.
 */
test.describe.configure({ mode: 'serial' })

const B = 'e2e-b'
const agent = new AgentProcess(B, SECOND_AGENT_PORTS)
/** Shared by the tests: the member who deploys, and the app page. */
let dev = { email: '', password: '' }
let tenantSlug = ''
let appUrl = ''
/** Replicas the scheduler put on e2e-b. */
let onB = 0
/** This test's pages: the built-in page is the operator's, `member` its own context. */
let ops: Page
let member: Page

const nodeRow = (page: Page, name: string) => page.locator(`[data-testid=node-row][data-node-name="${name}"]`)
const activeRows = (page: Page) => page.locator('[data-testid=instance-row][data-desired=running]')
const runningOn = (page: Page, node: string) => page.locator(`[data-testid=instance-row][data-desired=running][data-state=running][data-node-name="${node}"]`)

/** Marks the document; `stillSameDocument` proves no reload happened since (updates arrived live). */
const markDocument = (page: Page) => page.evaluate(() => ((window as unknown as { __e2eDoc: boolean }).__e2eDoc = true))
const stillSameDocument = async (page: Page) => expect(await page.evaluate(() => (window as unknown as { __e2eDoc?: boolean }).__e2eDoc)).toBe(true)

async function newPage(browser: Browser): Promise<Page> {
  const ctx = await browser.newContext({ baseURL, viewport: { width: 1440, height: 900 } })
  return ctx.newPage()
}

test.beforeEach(async ({ page, browser }) => {
  ops = page
  member = await newPage(browser)
})

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    await testInfo.attach(`agent ${B} output`, { body: agent.tail(100), contentType: 'text/plain' })
    await testInfo.attach(`instances of ${B}`, { body: agent.instanceOutput(), contentType: 'text/plain' })
    // Printed in the CI log, where screenshots cannot be seen: where each page was and what it showed.
    for (const [name, p] of [['operator', ops], ['member', member]] as const) {
      const text = await p.locator('body').innerText({ timeout: 2_000 }).catch((e: Error) => `(no text: ${e.message.split('\n')[0]})`)
      await testInfo.attach(`${name} page`, { body: `${p.url()}\n${text.slice(0, 2_000)}`, contentType: 'text/plain' })
    }
    await testInfo.attach('member screenshot', { body: await member.screenshot({ fullPage: true }), contentType: 'image/png' }).catch(() => {})
  }
  await member.context().close()
})

test.afterAll(async () => {
  await agent.cleanup()
})

test('a second node joins; replicas spread over both', async () => {
  // Operator: a join token from the nodes page, and the second agent started with it.
  await login(ops, OPERATOR.email, OPERATOR.password)
  await ops.goto('/ops/nodes')
  await expect(nodeRow(ops, LOCAL_NODE)).toHaveAttribute('data-state', 'ready')
  await ops.locator('#jt-desc').fill(`second node ${B}`)
  await ops.locator('#jt-node').fill(B)
  await ops.getByTestId('create-join-token').click()
  const token = (await ops.getByTestId('join-token-value').textContent())?.trim()
  expect(token, 'the new join token').toBeTruthy()
  await expect(ops.getByTestId('agent-command')).toContainText(`--name ${B}`)
  agent.start(token)

  await markDocument(ops)
  const b = nodeRow(ops, B)
  await expect(b, `agent output:\n${agent.tail()}`).toHaveAttribute('data-state', 'ready', { timeout: 30_000 })
  await expect(b).toHaveAttribute('data-connected', 'true')
  await expect(ops.locator('[data-testid=node-row][data-state=ready]')).toHaveCount(2)
  await expect(b.getByTestId('node-state')).toHaveText('ready')

  // Member: deploys the sample app with 4 replicas; the scheduler spreads them over both nodes.
  const { tenant, member: m } = await tenantWithDeveloper('fleet')
  dev = m
  tenantSlug = tenant.slug
  await login(member, dev.email, dev.password)
  await member.goto(`/t/${tenant.slug}/apps/new`)
  // The button works once the page is hydrated: click until the sample is in the form.
  await expect(async () => {
    await member.getByTestId('use-sample').click()
    await expect(member.locator('#name')).toHaveValue('hello', { timeout: 1_000 })
  }).toPass()
  await member.locator('#replicas').fill('4')
  await member.getByTestId('deploy-submit').click()
  await expect(member).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))
  appUrl = new URL(member.url()).pathname
  await markDocument(member)
  await expect(member.locator('[data-testid=instance-row][data-desired=running][data-state=running]')).toHaveCount(4, { timeout: 45_000 })
  await expect(runningOn(member, B).first()).toBeVisible()
  await expect(runningOn(member, LOCAL_NODE).first()).toBeVisible()
  onB = await runningOn(member, B).count()
  expect(onB, 'replicas on each node').toBeGreaterThan(0)
  expect(onB).toBeLessThan(4)
  await expect(b.getByTestId('node-instances')).toHaveText(String(onB))
  await stillSameDocument(ops)
})

test('cordon and drain move them all to local, live', async () => {
  expect(onB, 'replicas on e2e-b from the previous test').toBeGreaterThan(0)
  await login(ops, OPERATOR.email, OPERATOR.password)
  await ops.goto('/ops/nodes')
  await markDocument(ops)
  const b = nodeRow(ops, B)
  await login(member, dev.email, dev.password)
  await member.goto(appUrl)
  await markDocument(member)
  await expect(runningOn(member, B)).toHaveCount(onB)

  // Operator: cordon e2e-b (nothing new goes there; what runs stays), then drain it.
  await b.getByTestId('node-cordon').click()
  await expect(b).toHaveAttribute('data-schedulable', 'false')
  await expect(b.getByTestId('node-scheduling')).toHaveText('cordoned')
  await expect(b.getByTestId('node-instances')).toHaveText(String(onB))
  await b.getByTestId('node-drain').click()
  await b.getByTestId('node-drain-confirm').click()
  // Its instance count drops to 0 and the drain finishes, without a reload.
  await expect(b.getByTestId('node-instances')).toHaveText('0', { timeout: 45_000 })
  await expect(b).toHaveAttribute('data-draining', 'false', { timeout: 30_000 })
  await expect(b).toHaveAttribute('data-schedulable', 'false')
  await stillSameDocument(ops)

  // The member's app page: all 4 replicas run on local now (live too).
  await expect(runningOn(member, LOCAL_NODE)).toHaveCount(4, { timeout: 45_000 })
  await expect(activeRows(member)).toHaveCount(4)
  await stillSameDocument(member)
})

test('node detail pages list the instances; uncordon from there; the scheduler counts the placements', async () => {
  expect(onB, 'replicas on e2e-b from the first test').toBeGreaterThan(0)
  await login(ops, OPERATOR.email, OPERATOR.password)
  await ops.goto('/ops/nodes')
  // The node detail page of local lists them, with their tenant and app.
  await nodeRow(ops, LOCAL_NODE).getByTestId('node-link').click()
  await expect(ops).toHaveURL(/\/ops\/nodes\/[0-9a-f-]{36}$/)
  await expect(ops.getByTestId('node-name')).toHaveText(LOCAL_NODE)
  await expect(ops.locator(`[data-testid=node-instance-row][data-tenant="${tenantSlug}"][data-app=hello][data-desired=running][data-state=running]`)).toHaveCount(4)
  // e2e-b's detail page: empty, cordoned; uncordon it from there.
  await ops.goto('/ops/nodes')
  await nodeRow(ops, B).getByTestId('node-link').click()
  await expect(ops.getByTestId('node-name')).toHaveText(B)
  await expect(ops.getByTestId('node-instance-count')).toHaveAttribute('data-count', '0')
  await ops.getByTestId('node-uncordon').click()
  await expect(ops.getByTestId('node-detail')).toHaveAttribute('data-schedulable', 'true')
  await expect(ops.getByTestId('node-scheduling')).toHaveText('schedulable')

  // The scheduler panel (this BFF is the leader) counts the placements, drain moves included.
  await ops.getByTestId('nav-scheduler').click()
  await expect(ops.getByTestId('scheduler-panel')).toHaveAttribute('data-leader', 'true')
  await expect.poll(async () => Number(await ops.getByTestId('scheduler-placed').getAttribute('data-value'))).toBeGreaterThanOrEqual(4 + onB)
})

test('new replicas go to e2e-b while local is cordoned', async () => {
  expect(agent.running, 'the second agent from the previous test').toBe(true)
  expect(appUrl).not.toBe('')
  const api = await operatorApi()
  const nodes = await trpc<{ id: string; name: string }[]>(api, 'nodes.list', undefined, 'query')
  const local = nodes.find((n) => n.name === LOCAL_NODE)!

  // Put new replicas on e2e-b: cordon local, scale 4 -> 6, uncordon local.
  await trpc(api, 'nodes.cordon', { nodeId: local.id })
  try {
    await login(member, dev.email, dev.password)
    await member.goto(appUrl)
    await markDocument(member)
    await member.getByTestId('scale-input').fill('6')
    await member.getByTestId('scale-apply').click()
    await expect(member.getByTestId('desired-count')).toHaveText('6')
    await expect(runningOn(member, B)).toHaveCount(2, { timeout: 45_000 })
    await expect(runningOn(member, LOCAL_NODE)).toHaveCount(4)
  } finally {
    await trpc(api, 'nodes.uncordon', { nodeId: local.id })
    await api.dispose()
  }
})

test('a lost node goes NotReady and its instances come back running on local', async () => {
  expect(agent.running, 'the second agent from the previous tests').toBe(true)
  await login(member, dev.email, dev.password)
  await member.goto(appUrl)
  await markDocument(member)
  await expect(runningOn(member, B)).toHaveCount(2)

  await login(ops, OPERATOR.email, OPERATOR.password)
  await ops.goto('/ops/nodes')
  await markDocument(ops)
  const b = nodeRow(ops, B)
  await expect(b).toHaveAttribute('data-state', 'ready')
  await expect(b.getByTestId('node-instances')).toHaveText('2')

  // The machine "dies": SIGKILL, no goodbye. NotReady after the lease (3 s), shown live.
  const killedAt = Date.now()
  await agent.kill('SIGKILL')
  await expect(b).toHaveAttribute('data-connected', 'false', { timeout: 5_000 })
  await expect(b).toHaveAttribute('data-state', 'not_ready', { timeout: LIFECYCLE.nodeLeaseMs + 7_000 })
  await expect(b.getByTestId('node-state')).toHaveText('not ready')
  await expect(b.getByText(/last heartbeat \d+s ago/)).toBeVisible()
  expect(Date.now() - killedAt, 'NotReady within a few seconds').toBeLessThan(LIFECYCLE.nodeLeaseMs + 7_000)

  // After the eviction grace its replicas are rescheduled: all 6 run on local.
  const deadline = LIFECYCLE.nodeLeaseMs + LIFECYCLE.evictionGraceMs + 20_000
  await expect(runningOn(member, LOCAL_NODE)).toHaveCount(6, { timeout: deadline })
  await expect(activeRows(member)).toHaveCount(6)
  await expect(b.getByTestId('node-instances')).toHaveText('0')
  await expect(nodeRow(ops, LOCAL_NODE)).toHaveAttribute('data-state', 'ready')
  await stillSameDocument(ops)
  await stillSameDocument(member)
})
