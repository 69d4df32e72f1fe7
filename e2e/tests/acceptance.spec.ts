import { expect, test } from '@playwright/test'
import { OPERATOR } from '../env'
import { login, logout, uid } from './helpers'

test('operator sets up a tenant and invites its owner; the owner joins, deploys, reaches and scales the sample app', async ({ page }) => {
  const slug = `acme-${uid()}`
  const member = { email: `dana-${slug}@example.test`, name: 'Dana Developer', password: 'dana-secret-1' }

  // Operator: create the tenant and invite its first owner from the admin UI.
  await login(page, OPERATOR.email, OPERATOR.password)
  await page.getByTestId('nav-tenants').click()
  await expect(page).toHaveURL(/\/admin\/tenants$/)
  await page.locator('#t-slug').fill(slug)
  await page.locator('#t-name').fill('Acme E2E')
  await page.getByTestId('create-tenant-submit').click()
  const tenantRow = page.locator(`[data-testid=tenant-row][data-slug="${slug}"]`)
  await expect(tenantRow).toBeVisible()

  await tenantRow.getByTestId('tenant-members').click()
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/members$`))
  await expect(page.locator('#i-role')).toHaveValue('owner')
  await page.locator('#i-email').fill(member.email)
  await page.getByTestId('invite-submit').click()
  const link = (await page.getByTestId('invite-link').textContent())!.trim()
  await expect(page.locator(`[data-testid=invitation-row][data-email="${member.email}"]`)).toBeVisible()
  await logout(page)

  // The owner opens the link, creates the account, lands on the tenant's apps and deploys the sample app.
  await page.goto(link)
  await page.locator('#su-name').fill(member.name)
  await page.locator('#su-password').fill(member.password)
  await page.getByTestId('signup-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/apps$`))
  await expect(page.getByTestId('current-user')).toHaveText(member.name)
  await page.getByTestId('deploy-app').click()
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/apps/new$`))
  await page.getByTestId('use-sample').click()
  await expect(page.locator('#name')).toHaveValue('hello')
  await expect(page.locator('#replicas')).toHaveValue('3')
  await page.getByTestId('deploy-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/apps/[0-9a-f-]{36}$`))
  await expect(page.getByTestId('app-name')).toHaveText('hello')

  // From here on the page is never reloaded: everything below arrives live.
  await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true))

  const rows = page.getByTestId('instance-row')
  const running = page.locator('[data-testid=instance-row][data-state=running]')
  await expect(running).toHaveCount(3, { timeout: 45_000 })
  await expect(rows).toHaveCount(3)
  await expect(page.getByTestId('running-count')).toHaveText('3')

  // Each replica answers on its URL with its own instance id.
  const first = running.first()
  const id = await first.getAttribute('data-instance-id')
  const url = await first.getByTestId('instance-url').getAttribute('href')
  expect(id).toBeTruthy()
  expect(url).toMatch(/^http:\/\//)
  const res = await page.request.get(url!)
  expect(res.ok()).toBeTruthy()
  expect(await res.text()).toContain(id!)

  // Scale to 1: two replicas stop, one keeps running.
  await page.getByTestId('scale-input').fill('1')
  await page.getByTestId('scale-apply').click()
  await expect(page.getByTestId('desired-count')).toHaveText('1')
  await expect(page.locator('[data-testid=instance-row][data-state=stopped]')).toHaveCount(2, { timeout: 45_000 })
  await expect(running).toHaveCount(1)
  await expect(page.getByTestId('running-count')).toHaveText('1')

  expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true)

  // The apps list agrees.
  await page.getByTestId('nav-apps').click()
  const appRow = page.locator('[data-testid=app-row][data-app-name=hello]')
  await expect(appRow).toHaveAttribute('data-running', '1')
  await expect(appRow).toHaveAttribute('data-replicas', '1')
})
