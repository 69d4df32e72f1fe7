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

test('advanced scheduling: validated like the API, shown on the app, and an unplaceable replica says why', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('sched')
  await login(page, member.email, member.password)
  await page.goto(`/t/${tenant.slug}/apps/new`)
  await page.getByTestId('use-sample').click()
  await page.locator('#name').fill('pinned')
  await page.locator('#replicas').fill('2')
  await expect(page.locator('#nodeSelector')).toBeHidden()

  // Invalid values open the disclosure and show next to their fields.
  await page.getByTestId('advanced-toggle').click()
  await page.locator('#nodeSelector').fill('zone=nowhere\nbogus')
  await page.locator('#maxUnavailable').fill('0')
  await page.getByTestId('advanced-toggle').click()
  await page.getByTestId('deploy-submit').click()
  await expect(page.locator('#nodeSelector')).toBeVisible()
  const selectorField = page.locator('div', { has: page.locator('#nodeSelector') }).last()
  const maxField = page.locator('div', { has: page.locator('#maxUnavailable') }).last()
  await expect(selectorField.getByTestId('field-error')).toHaveText('Line 2: expected key=value')
  await expect(maxField.getByTestId('field-error')).toHaveText('At least 1')

  await page.locator('#nodeSelector').fill('zone=nowhere')
  await page.locator('#maxUnavailable').fill('2')
  await page.getByTestId('spread').getByText('hard').click()
  await page.locator('#placementStrategy').selectOption('binpack')
  await page.locator('#priorityClass').selectOption('high')
  await expect(page.getByTestId('field-error')).toHaveCount(0)
  await page.getByTestId('deploy-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))

  await expect(page.getByTestId('spec-node-selector')).toHaveText('zone=nowhere')
  await expect(page.getByTestId('spec-spread')).toHaveText('hard spread')
  await expect(page.getByTestId('spec-placement')).toHaveText('binpack placement')
  await expect(page.getByTestId('spec-priority')).toHaveText('high priority')
  await expect(page.getByTestId('spec-max-unavailable')).toContainText('at most 2 replicas')
  // No node carries the label: both replicas wait, and say why.
  await expect(page.getByTestId('pending-reason')).toHaveCount(2, { timeout: 30_000 })
  await expect(page.getByTestId('pending-reason').first()).toContainText('label zone=nowhere missing')
  await expect(page.getByTestId('pending-summary')).toContainText('2 replicas are waiting for a node')
})

test('minimum ready time: checked like the API in the deploy and the new-revision forms, and kept', async ({ page }) => {
  const { tenant, member } = await tenantWithDeveloper('minready')
  await login(page, member.email, member.password)
  await page.goto(`/t/${tenant.slug}/apps/new`)
  await page.getByTestId('use-sample').click()
  await page.locator('#name').fill('steady')
  await page.locator('#replicas').fill('0')
  const field = page.locator('div', { has: page.locator('#minReadySeconds') }).last()
  await page.locator('#minReadySeconds').fill('601')
  await page.getByTestId('deploy-submit').click()
  await expect(field.getByTestId('field-error')).toHaveText('At most 10 minutes')
  await expect(page.locator('#minReadySeconds')).toHaveAttribute('aria-invalid', 'true')
  await page.locator('#minReadySeconds').fill('2.5')
  await expect(field.getByTestId('field-error')).toHaveText('A whole number')
  await page.locator('#minReadySeconds').fill('5')
  await expect(page.getByTestId('field-error')).toHaveCount(0)
  await page.getByTestId('deploy-submit').click()
  await expect(page).toHaveURL(new RegExp(`/t/${tenant.slug}/apps/[0-9a-f-]{36}$`))

  // The app keeps it; the new-revision form starts from it and refuses what the API would.
  await expect(page.getByTestId('revision-min-ready')).toHaveValue('5')
  await page.getByTestId('revision-min-ready').fill('700')
  await expect(page.getByTestId('revision-min-ready-error')).toHaveText('Minimum ready time: At most 10 minutes')
  await expect(page.getByTestId('roll-out')).toBeDisabled()
  await page.getByTestId('revision-min-ready').fill('')
  await expect(page.getByTestId('revision-min-ready-error')).toHaveCount(0)
  await expect(page.getByTestId('roll-out')).toBeEnabled()
})
