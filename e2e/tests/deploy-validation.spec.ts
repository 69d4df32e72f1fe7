import { expect, test } from '@playwright/test'
import { login, tenantWithDeveloper } from './helpers'

test('a bad deploy shows the validation messages next to the fields, and domain errors clearly', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('bad')
  await login(page, member.email, member.password)
  await page.goto(`/t/${tenant.slug}/apps/new`)

  await page.locator('#name').fill('Bad Name!')
  await page.locator('#command').fill('')
  await page.getByTestId('deploy-submit').click()

  const nameField = page.locator('div', { has: page.locator('#name') }).last()
  const commandField = page.locator('div', { has: page.locator('#command') }).last()
  await expect(nameField.getByTestId('field-error')).toHaveText('Lowercase letters, digits and dashes; start with a letter')
  await expect(commandField.getByTestId('field-error')).toHaveText('A process app needs a command')
  await expect(page.locator('#name')).toHaveAttribute('aria-invalid', 'true')
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/new$`))

  // Valid input that the API refuses (more instances than the quota allows): the message shows.
  await page.locator('#name').fill('too-big')
  await page.locator('#command').fill('node')
  await page.locator('#replicas').fill('1000')
  await expect(page.getByTestId('field-error')).toHaveCount(0)
  await page.getByTestId('deploy-submit').click()
  await expect(page.getByTestId('error')).toContainText('Quota exceeded')
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/new$`))
})
