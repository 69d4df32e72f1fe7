import { expect, request as pwRequest, test } from '@playwright/test'
import { LOCAL_NODE } from '../env'
import { login, operatorApi, tenantWithDeveloper, trpc } from './helpers'

test.describe.configure({ timeout: 240_000 })

test('an LB from the console spreads traffic over the replicas; a new revision rolls out live and rolls back', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('lb')
  // The local node serves load balancers (what an operator ticks on the nodes page).
  const op = await operatorApi()
  const nodes = await trpc<{ id: string; name: string; lbDriver: string | null; state: string }[]>(op, 'nodes.list', undefined, 'query')
  // By name: an agent another test file started and stopped may still be listed as ready for its lease.
  const node = nodes.find((n) => n.name === LOCAL_NODE && n.state === 'ready' && n.lbDriver)
  expect(node, 'the local node, ready, with a load-balancer data plane').toBeTruthy()
  await trpc(op, 'loadBalancers.setNode', { nodeId: node!.id, enabled: true })
  await op.dispose()

  await login(page, member.email, member.password)
  await page.getByTestId('deploy-app').click()
  await page.getByTestId('use-sample').click()
  await expect(page.locator('#readinessPath')).toHaveValue('/healthz')
  await page.locator('#name').fill('web')
  await page.getByTestId('deploy-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))
  const appUrl = page.url()
  await expect(page.locator('[data-testid=instance-health][data-ready=true]')).toHaveCount(3, { timeout: 60_000 })
  // The app's spec says which check gates the replicas.
  await expect(page.getByTestId('spec-health')).toContainText('readiness on http: HTTP GET /healthz → 200')

  // A load balancer in front of it, from the console.
  await page.getByTestId('nav-lbs').click()
  const form = page.getByTestId('new-lb')
  await form.getByTestId('lb-name-input').fill('front')
  await form.getByTestId('lb-rule-app').selectOption({ label: 'web' })
  await form.getByTestId('lb-drain').fill('2')
  await form.getByTestId('lb-create').click()
  const lb = page.getByTestId('lb')
  await expect(lb.getByTestId('lb-state')).toHaveText('active', { timeout: 30_000 })
  const url = (await lb.getByTestId('lb-url').first().textContent())!.trim()
  expect(url).toMatch(/^http:\/\/[^:]+:\d+$/)

  // Traffic spreads over the three replicas.
  const client = await pwRequest.newContext()
  const seen = new Set<string>()
  await expect
    .poll(async () => {
      for (let i = 0; i < 12; i++) seen.add(/hello from (\S+)/.exec(await (await client.get(url)).text())?.[1] ?? '')
      return seen.size
    }, { timeout: 30_000 })
    .toBe(3)
  // Its card lists the three replicas as servers in the pool.
  await expect(lb.locator('[data-testid=lb-server][data-state=in_pool]')).toHaveCount(3)
  await page.screenshot({ path: test.info().outputPath('load-balancer.png'), fullPage: true })

  // Edited in place: cookie stickiness from now on, served by the node without a new address.
  await lb.getByTestId('lb-edit').click()
  await lb.getByTestId('lb-sticky').fill('60')
  await lb.getByTestId('lb-save').click()
  await expect(lb).toContainText('sticky for 60s')
  await expect.poll(async () => (await client.get(url)).headers()['set-cookie'] ?? '', { timeout: 30_000 }).toContain('ALVEARY_LB=')
  await expect(lb.getByTestId('lb-url').first()).toHaveText(url)

  // A new revision, watched live on the app page.
  await page.goto(appUrl)
  await page.getByTestId('revision-env').fill('VERSION=2')
  await page.getByTestId('revision-min-ready').fill('1')
  await page.getByTestId('roll-out').click()
  const rollout = page.getByTestId('rollout')
  await expect(rollout).toHaveAttribute('data-kind', 'update')
  await expect(page.getByTestId('rollout-step')).toBeVisible()
  await expect(rollout).toHaveAttribute('data-state', 'succeeded', { timeout: 120_000 })
  await expect(page.getByTestId('app-revision')).toHaveText('revision 2')
  await expect.poll(async () => (await client.get(url)).text(), { timeout: 30_000 }).toContain('version 2')
  await expect(page.locator('[data-testid=revision-row][data-revision="2"]').getByTestId('revision-diff')).toContainText('env.VERSION')
  await expect(page.locator('[data-testid=revision-row][data-revision="2"]').getByTestId('revision-diff')).toContainText('minReadySeconds')
  await page.screenshot({ path: test.info().outputPath('rollout.png'), fullPage: true })

  // And back, by hand.
  await page.locator('[data-testid=revision-row][data-revision="1"]').getByTestId('rollback').click()
  await expect(rollout).toHaveAttribute('data-kind', 'rollback', { timeout: 30_000 })
  await expect(rollout).toHaveAttribute('data-state', 'succeeded', { timeout: 120_000 })
  await expect(page.getByTestId('app-revision')).toHaveText('revision 3')
  await expect.poll(async () => (await client.get(url)).text(), { timeout: 30_000 }).not.toContain('version 2')
  await client.dispose()
})
