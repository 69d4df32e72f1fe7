import { expect, test, type Page } from '@playwright/test'
import { LOCAL_NODE, OPERATOR, UNSANDBOXED_AGENT_PORTS } from '../env'
import { AgentProcess } from './agent-process'
import { login, operatorApi, tenantWithDeveloper, trpc } from './helpers'

/**
 * Isolation as operators see it: each node's capabilities on its page, and a node that cannot
 * sandbox process apps (an agent started with --sandbox off) taking only trusted tenants' ones.
 * The local node sandboxes (root and bubblewrap on the machine that runs the suite).
 */
test.describe.configure({ mode: 'serial' })

const U = 'e2e-unsandboxed'
const agent = new AgentProcess(U, UNSANDBOXED_AGENT_PORTS, ['--sandbox', 'off', '--labels', 'e2e-isolation=unsandboxed'])

test.afterEach(async ({}, testInfo) => {
  // Printed in the CI log: what the agent and its instances said (an instance that keeps exiting says why).
  if (testInfo.status !== testInfo.expectedStatus) {
    await testInfo.attach(`agent ${U} output`, { body: agent.tail(100), contentType: 'text/plain' })
    await testInfo.attach(`instances of ${U}`, { body: agent.instanceOutput(), contentType: 'text/plain' })
  }
})

test.afterAll(async () => {
  await agent.cleanup()
})

async function openNode(page: Page, name: string) {
  await page.goto('/ops/nodes')
  const row = page.locator(`[data-testid=node-row][data-node-name="${name}"]`)
  await expect(row, `agent output:\n${agent.tail()}`).toHaveAttribute('data-state', 'ready', { timeout: 30_000 })
  await row.getByTestId('node-link').click()
  await expect(page).toHaveURL(/\/ops\/nodes\/[0-9a-f-]{36}$/)
}

test('node pages show what each node can enforce; an untrusted tenant’s process app waits for a sandbox, a trusted one runs unsandboxed', async ({ page, browser }) => {
  const api = await operatorApi()
  const { token } = await trpc<{ token: string }>(api, 'joinTokens.create', { description: 'isolation e2e', ttlHours: 1, uses: 1 })
  agent.start(token)

  await login(page, OPERATOR.email, OPERATOR.password)
  await openNode(page, LOCAL_NODE)
  await expect(page.getByTestId('node-sandbox')).toHaveAttribute('data-mode', 'sandboxed')
  await expect(page.getByTestId('node-sandbox')).toContainText('cgroup')
  await expect(page.getByTestId('node-sandbox-network')).toHaveAttribute('data-network', 'own')
  // CI's Podman has an id range for its containers (.ci/run): each runs in a user namespace of its own.
  if (process.env['CI']) {
    await expect(page.getByTestId('node-containers')).toHaveAttribute('data-userns', 'true')
    await expect(page.getByTestId('node-containers')).toContainText('a user namespace of its own')
  }
  await openNode(page, U)
  await expect(page.getByTestId('node-sandbox')).toHaveAttribute('data-mode', 'unsandboxed')
  await expect(page.getByTestId('node-sandbox')).toContainText('--sandbox off')

  // A tenant nobody trusts (the first tenant of a fresh system is trusted by npm start: not this one).
  const { tenant, member } = await tenantWithDeveloper('iso')
  await trpc(api, 'tenants.setTrusted', { tenantId: tenant.id, trusted: false })
  const dev = await browser.newContext({ baseURL: page.url() })
  const devPage = await dev.newPage()
  await login(devPage, member.email, member.password)
  await devPage.goto(`/t/${tenant.slug}/apps/new`)
  await expect(async () => {
    await devPage.getByTestId('use-sample').click()
    await expect(devPage.locator('#name')).toHaveValue('hello', { timeout: 1_000 })
  }).toPass()
  await devPage.locator('#replicas').fill('1')
  await devPage.locator('#pidsMax').fill('64')
  await devPage.getByTestId('advanced-toggle').click()
  await devPage.locator('#nodeSelector').fill('e2e-isolation=unsandboxed')
  await devPage.getByTestId('deploy-submit').click()
  await expect(devPage).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))
  await expect(devPage.getByTestId('spec-limits')).toContainText('64 pids')
  await expect(devPage.getByTestId('pending-reason')).toContainText('cannot sandbox process apps', { timeout: 30_000 })

  // The operator trusts the tenant (Admin → Tenants): the app is placed on the unsandboxed node.
  await page.goto('/admin/tenants')
  const row = page.locator(`[data-testid=tenant-row][data-slug="${tenant.slug}"]`)
  // A controlled checkbox: it turns checked once the change is saved.
  await row.getByTestId('tenant-trusted').click()
  await expect(row.getByTestId('tenant-trusted')).toBeChecked()
  const running = devPage.locator(`[data-testid=instance-row][data-state=running][data-node-name="${U}"]`)
  await expect(running, `agent output:\n${agent.tail()}`).toHaveCount(1, { timeout: 45_000 })
  await expect(running.getByTestId('instance-limits')).toContainText('64 pids')
  await dev.close()
  await api.dispose()
})
