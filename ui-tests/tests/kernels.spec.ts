import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import { fillTarget, openSidebar, testHosts, fillKernel } from './utils';

const KERNEL = 'galata-remote';
const DISPLAY = 'Galata remote';

async function launcherCard(
  page: IJupyterLabPageFixture,
  label: string
): Promise<Locator> {
  return page
    .locator('.jp-Launcher:visible .jp-LauncherCard[data-category="Notebook"]')
    .filter({ hasText: label });
}

async function openLauncher(page: IJupyterLabPageFixture): Promise<void> {
  await page.menu.clickMenuItem('File>New Launcher');
  await expect(page.locator('.jp-Launcher:visible')).toHaveCount(1);
}

test('a first-time user sees the empty state', async ({ page }) => {
  const panel = await openSidebar(page);
  const empty = panel.getByTestId('sshpyk-empty');
  await expect(empty).toBeVisible();
  await expect(empty.getByRole('button', { name: 'Add an SSH kernel' })).toBeVisible();
  await expect(empty.getByRole('link', { name: 'Try the demo sandbox' })).toHaveAttribute(
    'href',
    /demo/
  );
  await panel.screenshot({ path: 'screenshots/sshpyk-sidebar-empty.png' });
});

test('the status item stays hidden for a local kernel', async ({ page }) => {
  await page.notebook.createNew('local.ipynb', { kernel: 'python3' });
  await page.notebook.setCell(0, 'code', '1 + 1');
  await page.notebook.runCell(0);
  await expect(page.locator('.jp-StatusBar-Widget')).toBeVisible();
  await expect(page.getByTestId('sshpyk-status-item')).toHaveCount(0);
  await page.evaluate(() =>
    (window as any).jupyterapp.serviceManager.sessions.shutdownAll()
  );
});

test('a server validation error shows next to its field', async ({ page }) => {
  const { sshConfig } = testHosts();
  const panel = await openSidebar(page);
  await panel.getByTestId('sshpyk-empty-add').click();
  await fillTarget(panel, sshConfig, 'relative/env');
  await fillKernel(panel, 'Bad prefix', 'galata-bad');
  await panel.getByTestId('sshpyk-form-submit').click();

  const error = panel.getByTestId('sshpyk-error-remote_python_prefix');
  await expect(error).toContainText('must be absolute');
  // next to its field: inside that field's block, nowhere else
  await expect(
    panel.getByTestId('sshpyk-field-remote_python_prefix').getByRole('alert')
  ).toHaveCount(1);
  await expect(panel.getByTestId('sshpyk-form-error')).toHaveCount(0);
  await panel.screenshot({ path: 'screenshots/sshpyk-form-error.png' });
});

test('add, check, use, edit and delete an SSH kernel', async ({ page }) => {
  test.setTimeout(150000);
  const { sshConfig, prefix } = testHosts();
  const errors: string[] = [];
  page.on('console', m => {
    if (m.type() === 'error' && /sshpyk/i.test(m.text())) {
      errors.push(m.text());
    }
  });

  const panel = await openSidebar(page);
  await panel.getByTestId('sshpyk-add').click();
  await fillTarget(panel, sshConfig, prefix);
  const kernelSelect = panel.getByTestId('sshpyk-remote-kernel-select');
  await expect(kernelSelect.locator('option[value="python3"]')).toHaveCount(1, {
    timeout: 30000
  });
  await kernelSelect.selectOption('python3');
  // picking the remote kernel fills what the user left empty
  await expect(panel.getByRole('textbox', { name: 'Language', exact: true })).toHaveValue('python');
  await panel.getByRole('textbox', { name: 'Display name', exact: true }).fill(DISPLAY);
  await panel.getByRole('textbox', { name: 'Kernel name', exact: true }).fill(KERNEL);
  await panel.screenshot({ path: 'screenshots/sshpyk-form.png' });
  await panel.getByTestId('sshpyk-form-submit').click();

  const card = panel.getByTestId(`sshpyk-kernel-${KERNEL}`);
  await expect(card).toBeVisible();
  await expect(card.getByTestId('sshpyk-kernel-host')).toHaveText('remote');

  await card.getByRole('button', { name: 'Check' }).click();
  const summary = card.getByTestId('sshpyk-check-summary');
  await expect(summary).toHaveAttribute('data-state', 'ok', { timeout: 60000 });
  await expect(card.locator('[data-status="fail"]')).toHaveCount(0);
  await expect(card.locator('[data-status="ok"]').first()).toBeVisible();
  await panel.screenshot({ path: 'screenshots/sshpyk-sidebar-checks.png' });

  // The launcher: the new tile, with the SSH-badged logo the server wrote.
  await openLauncher(page);
  const tile = await launcherCard(page, DISPLAY);
  await expect(tile).toHaveCount(1);
  await expect(tile.locator('img.jp-Launcher-kernelIcon')).toHaveAttribute(
    'src',
    new RegExp(`/kernelspecs/${KERNEL}/logo-svg\\.svg`)
  );
  const local = page
    .locator('.jp-Launcher:visible .jp-LauncherCard[data-category="Notebook"]')
    .filter({ hasText: 'Python 3 (ipykernel)' });
  await expect(local.locator('img')).toHaveAttribute(
    'src',
    /\/kernelspecs\/python3\/logo-/
  );

  // A notebook on the remote kernel.
  await tile.click();
  await page.waitForSelector('.jp-NotebookPanel');
  await page.notebook.setCell(0, 'code', 'import socket; socket.gethostname()');
  await page.notebook.runCell(0);
  expect(await page.notebook.getCellTextOutput(0)).toEqual(["'remote'"]);

  const item = page.getByTestId('sshpyk-status-item');
  await expect(item).toHaveText('remote: connected', { timeout: 20000 });
  await page.locator('#jp-main-statusbar').screenshot({
    path: 'screenshots/sshpyk-statusbar.png'
  });
  await item.click();
  await expect(card).toHaveAttribute('aria-current', 'true');
  await expect(card.getByTestId('sshpyk-running')).toContainText('connected');

  await page.evaluate(() =>
    (window as any).jupyterapp.serviceManager.sessions.shutdownAll()
  );
  await page.notebook.close(true);

  // Edit.
  await card.getByRole('button', { name: 'Edit' }).click();
  await expect(panel.getByRole('textbox', { name: 'Kernel name', exact: true })).toHaveValue(KERNEL);
  await panel.getByRole('textbox', { name: 'Display name', exact: true }).fill(`${DISPLAY} edited`);
  await panel.getByTestId('sshpyk-form-submit').click();
  await expect(card).toContainText(`${DISPLAY} edited`);
  await openLauncher(page);
  await expect(await launcherCard(page, `${DISPLAY} edited`)).toHaveCount(1);

  // Delete.
  await card.getByRole('button', { name: 'Delete' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Delete' }).click();
  await expect(card).toHaveCount(0);
  await expect(panel.getByTestId('sshpyk-empty')).toBeVisible();
  await expect(await launcherCard(page, DISPLAY)).toHaveCount(0);

  expect(errors).toEqual([]);
});
