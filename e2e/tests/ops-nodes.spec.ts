import { expect, test } from '@playwright/test'
import { LOCAL_NODE, OPERATOR } from '../env'
import { login } from './helpers'

test('the operator sees the local node ready, cordons and uncordons it', async ({ page }) => {
  await login(page, OPERATOR.email, OPERATOR.password)
  await page.goto('/ops/nodes')
  const node = page.locator(`[data-testid=node-row][data-node-name="${LOCAL_NODE}"]`)
  await expect(node).toHaveAttribute('data-state', 'ready')
  await expect(node).toHaveAttribute('data-connected', 'true')
  await expect(node.getByTestId('node-state')).toHaveText('ready')
  await expect(node).toHaveAttribute('data-schedulable', 'true')

  await node.getByTestId('node-cordon').click()
  await expect(node).toHaveAttribute('data-schedulable', 'false')
  await expect(node.getByText('cordoned')).toBeVisible()

  await node.getByTestId('node-uncordon').click()
  await expect(node).toHaveAttribute('data-schedulable', 'true')
  await expect(node.getByText('schedulable')).toBeVisible()
})
