import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

// The wheel derives the Python version from this file, so the server must
// report exactly this release.
const { version } = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf-8')
);

/**
 * Don't load JupyterLab before the test starts, so that every console
 * message of the page load is captured.
 */
test.use({ autoGoto: false });

test('the sidebar shows the sshpyk server version', async ({ page }) => {
  const logs: string[] = [];
  const errors: string[] = [];
  page.on('console', message => {
    logs.push(message.text());
    if (message.type() === 'error') {
      errors.push(message.text());
    }
  });
  page.on('pageerror', error => {
    errors.push(error.stack ?? error.message);
  });

  await page.goto();

  expect(
    logs.filter(s => s === 'JupyterLab extension sshpyk is activated!')
  ).toHaveLength(1);

  await page.sidebar.openTab('sshpyk-sidebar');
  const panel = page.locator('#sshpyk-sidebar');
  await expect(panel.getByRole('heading', { name: 'SSH Kernels' })).toBeVisible();
  await expect(panel.getByTestId('sshpyk-server-version')).toHaveText(
    `sshpyk server ${version}`
  );
  await expect(panel.getByTestId('sshpyk-server-error')).toHaveCount(0);

  await page.screenshot({ path: 'screenshots/sshpyk-sidebar.png' });

  expect(errors.filter(s => /sshpyk/i.test(s))).toEqual([]);
});
