import { expect, test } from '@playwright/test'
import { login, tenantWithDeveloper } from './helpers'

/**
 * A tenant's networks in the console: the default network it got at creation, a new network
 * with its own CIDR, an app deployed onto it (its instances lease addresses at once, shown on
 * the instance rows and as leases; the suite's node runs host networking only, so they wait
 * with the scheduler's reason), a network in use cannot be deleted, an unused one can.
 */
test('a tenant creates a network, deploys onto it, sees the leases, and deletes it once unused', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('net')
  await login(page, member.email, member.password)
  await page.getByTestId('nav-networks').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/networks$`))

  const row = (name: string) => page.locator(`[data-testid=network-row][data-network=${name}]`)
  await expect(page.getByTestId('network-row')).toHaveCount(1)
  await expect(row('default')).toContainText(/100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.0\/24/)
  await expect(row('default')).toContainText('default')

  // Outside the private ranges: refused with the reason, nothing created.
  await page.locator('#n-name').fill('backend')
  await page.locator('#n-cidr').fill('8.8.8.0/24')
  await page.getByTestId('network-create').click()
  await expect(page.getByTestId('new-network').getByTestId('error')).toBeVisible()
  await expect(page.getByTestId('network-row')).toHaveCount(1)

  await page.locator('#n-cidr').fill('100.64.250.0/28')
  await page.getByTestId('network-create').click()
  await expect(row('backend')).toContainText('100.64.250.0/28')
  await expect(row('backend')).toContainText('100.64.250.1')
  await expect(row('backend')).toContainText('0 / 13')

  // The sample app on it, from the deploy form.
  await page.getByTestId('nav-apps').click()
  await page.getByTestId('deploy-app').click()
  await page.getByTestId('use-sample').click()
  await page.locator('#name').fill('api')
  await page.getByTestId('deploy-network').selectOption('backend')
  await page.getByTestId('deploy-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))
  const appUrl = page.url()
  await expect(page.getByTestId('spec-network')).toHaveText('backend')
  await expect(page.getByTestId('instance-ip')).toHaveText(['100.64.250.2', '100.64.250.3', '100.64.250.4'])
  await expect(page.getByTestId('instance-row').first()).toContainText('no overlay network (host networking only)')
  await page.screenshot({ path: test.info().outputPath('app-on-network.png'), fullPage: true })

  await page.getByTestId('nav-networks').click()
  await row('backend').click()
  await expect(row('backend')).toContainText('3 / 13')
  await expect(page.getByTestId('leases')).toContainText('Leases of backend (3)')
  await expect(page.getByTestId('lease-row')).toHaveCount(3)
  await expect(page.getByTestId('lease-row').first()).toContainText('100.64.250.2')
  await expect(page.getByTestId('lease-row').first()).toContainText('02:a1:64:40:fa:02')
  await expect(page.getByTestId('lease-row').first()).toContainText('not placed')
  await page.screenshot({ path: test.info().outputPath('networks.png'), fullPage: true })

  // In use: the delete is refused with the reason.
  await row('backend').getByTestId('network-delete').click()
  await expect(row('backend')).toContainText('Apps use it: delete them first.')
  await row('backend').getByTestId('network-delete-confirm').click()
  await expect(page.getByTestId('networks').getByTestId('error')).toBeVisible()
  await expect(page.getByTestId('network-row')).toHaveCount(2)

  // Once the app is gone its addresses are released, and the network can go.
  await page.goto(appUrl)
  await page.getByTestId('delete-app').click()
  await page.getByTestId('delete-app-confirm').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps$`))
  await page.getByTestId('nav-networks').click()
  await expect(row('backend')).toContainText('0 / 13', { timeout: 30_000 })
  await row('backend').getByTestId('network-delete').click()
  await expect(row('backend')).toContainText('Delete this network?')
  await row('backend').getByTestId('network-delete-confirm').click()
  await expect(page.getByTestId('network-row')).toHaveCount(1)
})
