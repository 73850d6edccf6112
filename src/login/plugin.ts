/**
 * The logins plugin: the login watcher (dialogs for ssh's prompts,
 * notifications when a login ends) behind `ISshpykLogins`, and the command
 * that starts a login, for the sidebar, the status bar or anyone else:
 *
 * ```ts
 * app.commands.execute('sshpyk:login', { alias: 'hpc', ssh_config: null });
 * ```
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { describeError } from '../errors';
import { ILogin } from './api';
import { ISshpykLogins } from './tokens';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the watcher polls from the start: a login a kernel launch started must show its prompt
import { LoginWatcher } from './watcher';

export const LOGIN_COMMAND = 'sshpyk:login';

export const loginPlugin: JupyterFrontEndPlugin<ISshpykLogins> = {
  id: 'sshpyk:logins',
  description:
    'Interactive logins to SSH hosts: shows what ssh asks (password, one-time code, host key) in a dialog.',
  autoStart: true,
  provides: ISshpykLogins,
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null
  ): ISshpykLogins => {
    const trans = (translator ?? nullTranslator).load('sshpyk');
    const watcher = new LoginWatcher({
      serverSettings: app.serviceManager.serverSettings,
      trans
    });
    app.commands.addCommand(LOGIN_COMMAND, {
      label: trans.__('Log In to SSH Host…'),
      caption: trans.__(
        'Log in to an SSH host that asks for a password, a one-time code or another answer'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            alias: {
              type: 'string',
              description: trans.__('The host alias of the ssh config')
            },
            ssh_config: {
              type: ['string', 'null'],
              description: trans.__(
                'The ssh config that names the host (null: the default one)'
              )
            }
          },
          required: ['alias']
        }
      },
      isEnabled: args => typeof args.alias === 'string' && args.alias !== '',
      execute: async (args): Promise<ILogin | null> => {
        const alias = args.alias;
        if (typeof alias !== 'string' || alias === '') {
          throw new Error(`${LOGIN_COMMAND} needs a host alias`);
        }
        const sshConfig =
          typeof args.ssh_config === 'string' ? args.ssh_config : null;
        try {
          return await watcher.start(alias, sshConfig);
        } catch (error) {
          Notification.error(
            trans.__(
              'Cannot start a login to %1: %2',
              alias,
              describeError(error)
            ),
            { autoClose: false }
          );
          return null;
        }
      }
    });
    return watcher;
  }
};
