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
 * message and page error of the page load is captured.
 */
test.use({ autoGoto: false });

test('the sidebar shows the sshpyk server version', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', message => {
    if (message.type() === 'error') {
      errors.push(message.text());
    }
  });
  page.on('pageerror', error => {
    errors.push(error.stack ?? error.message);
  });

  await page.goto();

  // both plugins are active: the model (provided to other extensions behind
  // its token) and the views
  expect(
    await page.evaluate(() =>
      ['sshpyk:model', 'sshpyk:plugin'].map(id =>
        (window as any).jupyterapp.isPluginActivated(id)
      )
    )
  ).toEqual([true, true]);

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
