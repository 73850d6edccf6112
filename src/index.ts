import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { loginPlugin } from './login/plugin';
import { ISshpykLogins } from './login/tokens';
import { SshpykModel } from './model';
import { slurmPlugin } from './slurm/plugin';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the panel must be in the shell before the layout is restored
import { SIDEBAR_ID, SshpykSidebar } from './sidebar/panel';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the status item must be registered during activation
import { CurrentTunnel, TunnelStatusItem } from './statusbar';
import { ISshpykModel } from './tokens';

export { ISshpykModel } from './tokens';
export type { IOrphanOutcome } from './tokens';
export { SshpykModel } from './model';
export { CheckRun } from './checks';
export type { CheckRunState } from './checks';
export type { ServerStatus } from './version';
export * from './api';
export * from './login/api';
export * from './slurm/api';
export { ISshpykLogins } from './login/tokens';
export { LOGIN_COMMAND } from './login/plugin';

namespace CommandIDs {
  export const showKernel = 'sshpyk:show-kernel';
  export const addKernel = 'sshpyk:add-kernel';
}

/**
 * The sshpyk model, for this package's views and any other extension.
 */
const modelPlugin: JupyterFrontEndPlugin<ISshpykModel> = {
  id: 'sshpyk:model',
  description:
    'The sshpyk model: SSH kernelspecs, checks, tunnel status, kernels left running, server version.',
  autoStart: true,
  provides: ISshpykModel,
  activate: (app: JupyterFrontEnd): ISshpykModel => {
    const { serverSettings, kernelspecs } = app.serviceManager;
    const model = new SshpykModel({
      serverSettings,
      refreshSpecs: () => kernelspecs.refreshSpecs()
    });
    // another tab or the CLI may change kernelspecs too
    kernelspecs.specsChanged.connect(() => void model.refreshKernelspecs());
    return model;
  }
};

/**
 * The sshpyk frontend: the SSH Kernels sidebar and the tunnel status item.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'sshpyk:plugin',
  description: 'Remote Jupyter kernels over SSH: sidebar and status bar item.',
  autoStart: true,
  requires: [ISshpykModel],
  optional: [
    ILabShell,
    ILayoutRestorer,
    ISettingRegistry,
    IStatusBar,
    ITranslator,
    ISshpykLogins
  ],
  activate: (
    app: JupyterFrontEnd,
    model: ISshpykModel,
    labShell: ILabShell | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    statusBar: IStatusBar | null,
    translator: ITranslator | null,
    logins: ISshpykLogins | null
  ) => {
    const trans = (translator ?? nullTranslator).load('sshpyk');

    // a host whose login ended: log in again (sshpyk:login, the login plugin's)
    const login = (alias: string, sshConfig: string | null) =>
      void app.commands.execute('sshpyk:login', {
        alias,
        ssh_config: sshConfig
      });
    const sidebar = new SshpykSidebar(
      model,
      trans,
      kernelId => {
        void app.commands.execute('console:create', {
          kernelPreference: { id: kernelId }
        });
      },
      login,
      // the form's "Check connection" logs in through the login flow
      logins
    );
    // After the core tabs (file browser, running sessions, TOC, extensions).
    app.shell.add(sidebar, 'left', { rank: 1100 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    app.commands.addCommand(CommandIDs.showKernel, {
      label: trans.__('Show the SSH kernel'),
      caption: trans.__('Show an SSH kernel in the SSH Kernels panel'),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            name: {
              type: 'string',
              description: trans.__('The kernelspec name of the SSH kernel')
            }
          }
        }
      },
      execute: args => {
        app.shell.activateById(SIDEBAR_ID);
        if (typeof args.name === 'string') {
          sidebar.showKernel(args.name);
        }
      }
    });
    app.commands.addCommand(CommandIDs.addKernel, {
      label: trans.__('Add an SSH Kernel…'),
      caption: trans.__('Open the form that adds an SSH kernel'),
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () => {
        app.shell.activateById(SIDEBAR_ID);
        sidebar.showAddForm();
      }
    });

    if (statusBar) {
      const current = new CurrentTunnel(model, trans);
      if (labShell) {
        labShell.currentChanged.connect((_, change) =>
          current.follow(change.newValue)
        );
        current.follow(labShell.currentWidget);
      }
      // a queued Slurm kernel: asks, then cancels its job
      const cancel = async (kernelId: string) => {
        const tunnel = model.tunnelByKernelId(kernelId);
        if (tunnel) {
          const { confirmCancelJob } = await import('./slurm/cancel');
          await confirmCancelJob(model, tunnel, trans);
        }
      };
      const item = new TunnelStatusItem(
        current,
        name => void app.commands.execute(CommandIDs.showKernel, { name }),
        trans,
        login,
        kernelId => void cancel(kernelId)
      );
      statusBar.registerStatusItem('sshpyk:tunnel-status', {
        item,
        align: 'left',
        rank: 4,
        isActive: () => current.info !== null,
        activeStateChanged: current.changed
      });
      if (settingRegistry) {
        settingRegistry
          .load(plugin.id)
          .then(settings => {
            const apply = () => {
              current.enabled =
                settings.get('showStatusItem').composite !== false;
            };
            apply();
            settings.changed.connect(apply);
          })
          .catch(reason => {
            console.error('sshpyk: failed to load settings.', reason);
          });
      }
    }
  }
};

/**
 * The plugins of this package (the template's default export); the tokens
 * and types are named exports.
 */
export default [modelPlugin, plugin, loginPlugin, slurmPlugin];
