import { expect, test } from '@playwright/test'
import { LOCAL_NODE } from '../env'
import { login, operatorApi, tenantWithDeveloper, trpc } from './helpers'

// An image app deployed from the console, its output followed live. Needs the local agent
// to offer the docker driver (a Docker or Podman socket, e.g. scripts/podman/start.sh):
// skipped with the reason otherwise, a failure in CI.
const IMAGE = process.env['ALVEARY_TEST_IMAGE'] ?? 'localhost/busybox:1'

test('deploy the busybox image from the console and watch its logs live', async ({ page }) => {
  const api = await operatorApi()
  const nodes = await trpc<{ name: string; drivers: string[] }[]>(api, 'nodes.list', undefined, 'query')
  await api.dispose()
  const docker = nodes.find((n) => n.name === LOCAL_NODE)?.drivers.includes('docker')
  const reason = 'the local agent offers no docker driver (no Docker/Podman socket; start one with scripts/podman/start.sh and set DOCKER_HOST)'
  if (!docker && process.env['CI']) throw new Error(reason)
  test.skip(!docker, reason)

  const { tenant, member } = await tenantWithDeveloper('box')
  await login(page, member.email, member.password)
  await page.goto(`/t/${tenant.slug}/apps/new`)
  await page.locator('#name').fill('ticker')
  await page.locator('#replicas').fill('1')
  await page.getByText('docker', { exact: true }).click()
  await page.locator('#image').fill(IMAGE)
  await page.locator('#command').fill('sh')
  await page.locator('#args').fill('-c\ni=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done')
  await page.locator('#cpuMillis').fill('100')
  await page.locator('#memoryMb').fill('16')
  await page.locator('#ports').fill('')
  await page.getByTestId('deploy-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))

  await expect(page.locator('[data-testid="instance-row"][data-state="running"]')).toHaveCount(1, { timeout: 30_000 })
  const logs = page.getByTestId('logs')
  await expect(logs).toContainText('tick 1', { timeout: 20_000 })
  // Later lines arrive without a reload (follow mode).
  await expect(logs).toContainText('tick 4', { timeout: 20_000 })

  // Search within the loaded lines.
  await page.getByLabel('Search loaded lines').fill('tick 2')
  await expect(page.getByTestId('logs-matches')).toContainText(/\d+ of \d+ loaded lines match/)
  await expect(logs.locator('mark').first()).toHaveText('tick 2')
})
