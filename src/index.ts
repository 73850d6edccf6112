import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

// eslint-disable-next-line jupyter/prefer-lazy-imports -- the panel must be in the shell before the layout is restored
import { SshpykSidebar } from './sidebar/panel';

/**
 * The sshpyk frontend: a left-sidebar panel for SSH kernels.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'sshpyk:plugin',
  description: 'Remote Jupyter kernels over SSH: the sidebar panel.',
  autoStart: true,
  optional: [ILayoutRestorer, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    console.log('JupyterLab extension sshpyk is activated!');
    const trans = (translator ?? nullTranslator).load('sshpyk');

    const sidebar = new SshpykSidebar(app.serviceManager.serverSettings, trans);
    // After the core tabs (file browser, running sessions, TOC, extensions).
    app.shell.add(sidebar, 'left', { rank: 1100 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    if (settingRegistry) {
      // The settings only steer the status item that lands with the kernel
      // UI; loading them now validates the schema in every Lab session.
      settingRegistry.load(plugin.id).catch(reason => {
        console.error('sshpyk: failed to load settings.', reason);
      });
    }
  }
};

export default plugin;
