import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import {
  deleteKernelQuietly,
  fillTarget,
  getKernel,
  openAdvanced,
  openSidebar,
  testHosts, fillKernel } from './utils';

const MOUNT_KERNEL = 'galata-mount';

test.describe('SSHFS mounts', () => {
  test.afterEach(async ({ page }) => {
    await deleteKernelQuietly(page, MOUNT_KERNEL);
  });

  test('a mount row is saved through the form and removed by Edit', async ({
    page
  }) => {
    test.setTimeout(60000);
    const { sshConfig, prefix } = testHosts();
    const panel = await openSidebar(page);
    await panel.getByTestId('sshpyk-add').click();
    await fillTarget(panel, sshConfig, prefix);
    await fillKernel(panel, 'Galata mount', MOUNT_KERNEL);

    const mounts = panel.getByTestId('sshpyk-field-mount_local_on_remote');
    await mounts.getByRole('button', { name: 'Add', exact: true }).click();
    await mounts
      .getByRole('textbox', { name: 'Local directory', exact: true })
      .fill('/tmp');
    await mounts
      .getByRole('textbox', { name: 'Remote mount point', exact: true })
      .fill('~/galata-mnt');
    await mounts
      .getByRole('textbox', { name: 'sshfs options', exact: true })
      .fill('reconnect');
    await mounts.getByRole('checkbox', { name: 'Optional' }).check();
    await panel.screenshot({ path: 'screenshots/sshpyk-form-mounts.png' });
    await panel.getByTestId('sshpyk-form-submit').click();

    const card = panel.getByTestId(`sshpyk-kernel-${MOUNT_KERNEL}`);
    await expect(card).toBeVisible();
    const added = await getKernel(page, MOUNT_KERNEL);
    expect(added.status).toBe(200);
    expect(added.body.config.mount_local_on_remote).toEqual([
      {
        local_path: '/tmp',
        remote_path: '~/galata-mnt',
        sshfs_options: 'reconnect',
        optional: true
      }
    ]);

    // Edit: the row is there, remove it, save.
    await card.getByRole('button', { name: 'Edit' }).click();
    await expect(
      mounts.getByRole('textbox', { name: 'Local directory', exact: true })
    ).toHaveValue('/tmp');
    await mounts.getByRole('button', { name: 'Remove', exact: true }).click();
    await expect(
      mounts.getByRole('textbox', { name: 'Local directory', exact: true })
    ).toHaveCount(0);
    await panel.getByTestId('sshpyk-form-submit').click();
    await expect(panel.getByTestId('sshpyk-form')).toHaveCount(0);
    await expect(card).toBeVisible();

    await expect
      .poll(
        async () =>
          (await getKernel(page, MOUNT_KERNEL)).body.config
            .mount_local_on_remote ?? []
      )
      .toEqual([]);
  });
});

/**
 * WCAG 2 contrast ratio of an element's text against what is behind it,
 * compositing translucent colours over the first opaque ancestor background.
 */
async function contrastOf(target: Locator): Promise<number> {
  return target.evaluate(el => {
    type RGBA = [number, number, number, number];
    const parse = (css: string): RGBA => {
      const m = css.match(/rgba?\(([^)]+)\)/);
      if (!m) {
        throw new Error(`unexpected colour ${css}`);
      }
      const parts = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const over = (top: RGBA, below: RGBA): RGBA => {
      const a = top[3] + below[3] * (1 - top[3]);
      if (a === 0) {
        return [0, 0, 0, 0];
      }
      const mix = (i: number) =>
        (top[i] * top[3] + below[i] * below[3] * (1 - top[3])) / a;
      return [mix(0), mix(1), mix(2), a];
    };
    // the layers behind the element, from itself outwards
    const layers: RGBA[] = [];
    for (let n: Element | null = el; n; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg[3] > 0) {
        layers.push(bg);
        if (bg[3] >= 1) {
          break;
        }
      }
    }
    let background: RGBA = [255, 255, 255, 1];
    for (const layer of layers.reverse()) {
      background = over(layer, background);
    }
    const text = over(parse(getComputedStyle(el).color), background);
    const luminance = (c: RGBA) => {
      const [r, g, b] = c.slice(0, 3).map(v => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [hi, lo] = [luminance(text), luminance(background)].sort(
      (a, b) => b - a
    );
    return (hi + 0.05) / (lo + 0.05);
  });
}

test('the sidebar and the form are readable in the dark theme', async ({
  page
}) => {
  await page.theme.setDarkTheme();
  expect(await page.theme.getTheme()).toBe('JupyterLab Dark');
  const panel = await openSidebar(page);
  // the theme really changed under the panel
  const background = await panel.evaluate(
    el => getComputedStyle(el).backgroundColor
  );
  expect(background).not.toBe('rgb(255, 255, 255)');

  await expect(panel.getByTestId('sshpyk-empty')).toBeVisible();
  expect(await contrastOf(panel)).toBeGreaterThanOrEqual(4.5);
  expect(
    await contrastOf(panel.getByRole('heading', { name: 'SSH Kernels' }))
  ).toBeGreaterThanOrEqual(4.5);
  expect(
    await contrastOf(panel.getByTestId('sshpyk-empty').locator('p').first())
  ).toBeGreaterThanOrEqual(4.5);
  await panel.screenshot({ path: 'screenshots/sshpyk-sidebar-dark.png' });

  await panel.getByTestId('sshpyk-add').click();
  await openAdvanced(panel);
  const input = panel.getByRole('textbox', {
    name: 'Remote Python prefix',
    exact: true
  });
  await input.fill('/opt/env');
  expect(await contrastOf(input)).toBeGreaterThanOrEqual(4.5);
  expect(
    await contrastOf(panel.getByTestId('sshpyk-host-select'))
  ).toBeGreaterThanOrEqual(4.5);
  expect(
    await contrastOf(panel.locator('label[for="root_remote_python_prefix"]'))
  ).toBeGreaterThanOrEqual(4.5);
  expect(
    await contrastOf(panel.getByTestId('sshpyk-discovery-note'))
  ).toBeGreaterThanOrEqual(4.5);
  await panel.screenshot({ path: 'screenshots/sshpyk-form-dark.png' });
});

/**
 * Press Tab until `target` has the focus, at most `max` times.
 */
async function tabTo(
  page: IJupyterLabPageFixture,
  target: Locator,
  max = 5
): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await target.evaluate(el => el === document.activeElement)) {
      return;
    }
    await page.keyboard.press('Tab');
  }
  await expect(target).toBeFocused();
}

test('the form works with the keyboard alone', async ({ page }) => {
  const panel = await openSidebar(page);
  const add = panel.getByTestId('sshpyk-add');
  await tabTo(page, add, 3);
  await page.keyboard.press('Enter');
  const form = panel.getByTestId('sshpyk-form');
  await expect(form).toBeVisible();

  // The host (the short path's first field) has the focus; "Advanced" opens
  // from the keyboard; then Tab walks every field up to the buttons, and
  // every field it reaches is named by its label.
  const focused = page.locator(':focus');
  const hostSelect = panel.getByTestId('sshpyk-host-select');
  await expect(hostSelect).toBeFocused();
  await tabTo(page, panel.getByTestId('sshpyk-advanced-toggle'), 4);
  await page.keyboard.press('Enter');
  await expect(panel.getByTestId('sshpyk-advanced')).toHaveAttribute(
    'open',
    ''
  );
  await hostSelect.focus();
  const names: string[] = [];
  for (let i = 0; i < 60; i++) {
    const info = await focused.evaluate(el => ({
      tag: el.tagName.toLowerCase(),
      text: (el.textContent ?? '').trim()
    }));
    if (info.tag === 'button' && info.text === 'Cancel') {
      break;
    }
    if (['input', 'select', 'textarea'].includes(info.tag)) {
      await expect(focused).toHaveAccessibleName(/\S/);
      const name = await focused.evaluate(
        el =>
          (el as HTMLInputElement).labels?.[0]?.textContent ??
          el.getAttribute('aria-label') ??
          ''
      );
      names.push(name.replace(/\s*\*$/, '').trim());
    }
    await page.keyboard.press('Tab');
  }
  await expect(form.getByRole('button', { name: 'Cancel' })).toBeFocused();
  expect(names).toEqual(
    expect.arrayContaining([
      'SSH config file',
      'SSH host alias',
      'Remote Python prefix',
      'Remote kernel',
      'Display name',
      'Kernel name',
      'Language'
    ])
  );

  // Enter on Cancel closes the form and gives the focus back to Add.
  await page.keyboard.press('Enter');
  await expect(form).toHaveCount(0);
  await expect(add).toBeFocused();

  // Escape closes it from any field.
  await page.keyboard.press('Enter');
  await expect(form).toBeVisible();
  await panel.getByTestId('sshpyk-host-select').focus();
  await page.keyboard.press('Escape');
  await expect(form).toHaveCount(0);
  await expect(add).toBeFocused();
});
