import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { UseSignal } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IKernelEntry } from '../api';
import { describeError } from '../errors';
import { FormData } from '../formdata';
import { sshpykIcon } from '../icons';
import { KernelsModel } from '../model';
import { TunnelStatusModel } from '../status';
import { fetchServerStatus, ServerStatus } from '../version';
import { KernelForm } from './form';
import { KernelList } from './list';
import { Orphans } from './orphans';

/**
 * The id of the left-sidebar panel; Galata tests open it by this id.
 */
export const SIDEBAR_ID = 'sshpyk-sidebar';

export const DEMO_URL = 'https://github.com/sshpyk/sshpyk#the-demo-sandbox';

function ServerVersion(props: {
  serverSettings: ServerConnection.ISettings;
  trans: TranslationBundle;
}): JSX.Element {
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
        className="jp-sshpyk-Sidebar-status jp-sshpyk-Error"
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
 * What a first-time user sees: what an SSH kernel is and how to get one.
 */
export function EmptyState(props: {
  trans: TranslationBundle;
  onAdd: () => void;
}): JSX.Element {
  const { trans } = props;
  return (
    <div className="jp-sshpyk-Empty" data-testid="sshpyk-empty">
      <p>
        {trans.__(
          'No SSH kernels yet. An SSH kernel runs on a remote machine that you reach with your own OpenSSH setup; sshpyk starts it there, tunnels its ports back, and it then shows up in the launcher like a local kernel.'
        )}
      </p>
      <button
        className="jp-mod-styled jp-mod-accept"
        data-testid="sshpyk-empty-add"
        onClick={props.onAdd}
      >
        {trans.__('Add an SSH kernel')}
      </button>
      <p>
        {trans.__('No server at hand? ')}
        <a href={DEMO_URL} target="_blank" rel="noopener noreferrer">
          {trans.__('Try the demo sandbox')}
        </a>
        {trans.__(' (`sshpyk demo`: a private sshd on this machine).')}
      </p>
    </div>
  );
}

type View =
  | { kind: 'list' }
  | { kind: 'form'; mode: 'add' }
  | { kind: 'form'; mode: 'edit'; initial: FormData };

/**
 * The sshpyk panel in the left sidebar: the SSH kernels and their forms.
 */
export class SshpykSidebar extends ReactWidget {
  constructor(
    private readonly _model: KernelsModel,
    private readonly _status: TunnelStatusModel,
    private readonly _trans: TranslationBundle,
    private readonly _openConsole?: (kernelId: string) => void
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-sshpyk-Sidebar');
    this.title.icon = sshpykIcon;
    this.title.caption = _trans.__('SSH Kernels');
    // Focusable itself, so activating the panel moves the keyboard focus in.
    this.node.tabIndex = -1;
    void _model.refresh();
  }

  protected onActivateRequest(): void {
    if (!this.node.contains(document.activeElement)) {
      this.node.focus();
    }
  }

  /**
   * Show the list with one kernel selected (the status bar's click).
   */
  showKernel(name: string): void {
    this._view = { kind: 'list' };
    this._actionError = null;
    this._model.selected = name;
    this.update();
  }

  showAddForm(): void {
    this._view = { kind: 'form', mode: 'add' };
    this.update();
  }

  private _edit = (entry: IKernelEntry) => {
    if (entry.config) {
      this._model.selected = entry.name;
      this._view = { kind: 'form', mode: 'edit', initial: entry.config };
      this.update();
    }
  };

  private _delete = async (entry: IKernelEntry) => {
    const name = entry.config?.display_name ?? entry.name;
    const answer = await showDialog({
      title: this._trans.__('Delete the SSH kernel?'),
      body: this._trans.__(
        'This removes the kernelspec "%1" (%2). Running kernels keep running until shut down.',
        name,
        entry.name
      ),
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: this._trans.__('Delete') })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await this._model.remove(entry.name);
      this._actionError = null;
    } catch (error) {
      this._actionError = this._trans.__(
        'Could not delete %1: %2',
        entry.name,
        describeError(error)
      );
    }
    this.update();
  };

  private _backToList = (name?: string) => {
    this._view = { kind: 'list' };
    // The form's buttons are gone: give the focus back to the Add button.
    this._focusAdd = true;
    if (name) {
      this._model.selected = name;
    }
    this.update();
  };

  protected render(): JSX.Element {
    const trans = this._trans;
    const view = this._view;
    return (
      <div className="jp-sshpyk-Sidebar-content">
        <div className="jp-sshpyk-Sidebar-header">
          <h2 className="jp-sshpyk-Sidebar-heading">
            {trans.__('SSH Kernels')}
          </h2>
          {view.kind === 'list' && (
            <button
              className="jp-mod-styled jp-mod-accept"
              data-testid="sshpyk-add"
              ref={this._addRef}
              onClick={() => this.showAddForm()}
            >
              {trans.__('Add')}
            </button>
          )}
        </div>
        {view.kind === 'form' ? (
          <KernelForm
            key={
              view.mode === 'edit' ? String(view.initial.kernel_name) : 'add'
            }
            model={this._model}
            mode={view.mode}
            initial={view.mode === 'edit' ? view.initial : undefined}
            onDone={this._backToList}
            onCancel={() => this._backToList()}
            trans={trans}
          />
        ) : (
          <UseSignal signal={this._model.changed}>
            {() => (
              <UseSignal signal={this._status.changed}>
                {() => this._renderList()}
              </UseSignal>
            )}
          </UseSignal>
        )}
        {view.kind === 'list' && (
          <Orphans
            serverSettings={this._model.serverSettings}
            trans={trans}
            onOpenConsole={this._openConsole}
          />
        )}
        <ServerVersion
          serverSettings={this._model.serverSettings}
          trans={trans}
        />
      </div>
    );
  }

  private _renderList(): JSX.Element {
    const model = this._model;
    const errors = [model.error, this._actionError].filter(Boolean);
    return (
      <>
        {errors.map(message => (
          <p
            key={message}
            className="jp-sshpyk-Error"
            role="alert"
            data-testid="sshpyk-list-error"
          >
            {message}
          </p>
        ))}
        {model.kernels === null && !model.error ? (
          <p className="jp-sshpyk-Muted">{this._trans.__('Loading…')}</p>
        ) : model.kernels !== null && model.kernels.length === 0 ? (
          <EmptyState trans={this._trans} onAdd={() => this.showAddForm()} />
        ) : (
          <KernelList
            model={model}
            status={this._status}
            onEdit={this._edit}
            onDelete={entry => void this._delete(entry)}
            trans={this._trans}
          />
        )}
      </>
    );
  }

  private _addRef = (button: HTMLButtonElement | null) => {
    if (button && this._focusAdd) {
      this._focusAdd = false;
      button.focus();
    }
  };

  private _focusAdd = false;
  private _view: View = { kind: 'list' };
  private _actionError: string | null = null;
}
