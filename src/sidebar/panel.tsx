import { ReactWidget } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { sshpykIcon } from '../icons';
import { fetchServerStatus, ServerStatus } from '../version';

/**
 * The id of the left-sidebar panel; Galata tests open it by this id.
 */
export const SIDEBAR_ID = 'sshpyk-sidebar';

interface IServerVersionProps {
  serverSettings: ServerConnection.ISettings;
  trans: TranslationBundle;
}

function ServerVersion(props: IServerVersionProps): JSX.Element {
  const { serverSettings, trans } = props;
  const [status, setStatus] = React.useState<ServerStatus | null>(null);

  React.useEffect(() => {
    // The panel can be disposed before the request settles.
    let active = true;
    void fetchServerStatus(serverSettings).then(result => {
      if (active) {
        setStatus(result);
      }
    });
    return () => {
      active = false;
    };
  }, [serverSettings]);

  if (status === null) {
    return (
      <p className="jp-sshpyk-Sidebar-status">
        {trans.__('Checking the server…')}
      </p>
    );
  }
  if (status.kind === 'error') {
    return (
      <p
        className="jp-sshpyk-Sidebar-status jp-sshpyk-Sidebar-error"
        data-testid="sshpyk-server-error"
        role="alert"
      >
        {status.message}
      </p>
    );
  }
  return (
    <p className="jp-sshpyk-Sidebar-status" data-testid="sshpyk-server-version">
      {trans.__('sshpyk server %1', status.version)}
    </p>
  );
}

/**
 * The sshpyk panel in the left sidebar.
 *
 * For now it only explains what an SSH kernel is and checks that the server
 * extension answers with a matching version.
 */
export class SshpykSidebar extends ReactWidget {
  constructor(
    private readonly _serverSettings: ServerConnection.ISettings,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-sshpyk-Sidebar');
    this.title.icon = sshpykIcon;
    this.title.caption = _trans.__('SSH Kernels');
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    return (
      <div className="jp-sshpyk-Sidebar-content">
        <h2 className="jp-sshpyk-Sidebar-heading">{trans.__('SSH Kernels')}</h2>
        <p className="jp-sshpyk-Sidebar-empty">
          {trans.__(
            'No SSH kernels yet. An SSH kernel runs on a remote machine that you reach with your own OpenSSH setup; sshpyk starts it there, tunnels its ports back, and it then shows up in the launcher like a local kernel.'
          )}
        </p>
        <ServerVersion serverSettings={this._serverSettings} trans={trans} />
      </div>
    );
  }
}
