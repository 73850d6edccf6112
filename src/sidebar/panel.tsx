import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { UseSignal } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IKernelspecEntry } from '../api';
import { describeError } from '../errors';
import { KernelFormData } from '../formdata';
import { sshpykIcon } from '../icons';
import { ISshpykModel } from '../tokens';
import { KernelForm } from './form';
import type { FormLogins } from './shortpath';
import { KernelspecList } from './list';
import { Orphans } from './orphans';

/**
 * The id of the left-sidebar panel; Galata tests open it by this id.
 */
export const SIDEBAR_ID = 'sshpyk-sidebar';

export const DEMO_URL = 'https://github.com/sshpyk/sshpyk#the-demo-sandbox';

/**
 * The server extension's version, or what is wrong with it.
 */
function ServerVersion(props: {
  model: ISshpykModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  return (
    <UseSignal signal={model.serverStatusChanged}>
      {() => {
        const status = model.serverStatus;
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
          <p
            className="jp-sshpyk-Sidebar-status"
            data-testid="sshpyk-server-version"
          >
            {trans.__('sshpyk server %1', status.version)}
          </p>
        );
      }}
    </UseSignal>
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
  | { kind: 'form'; mode: 'edit'; initial: KernelFormData };

/**
 * The sshpyk panel in the left sidebar: the SSH kernels and their forms, the
 * kernels left running, the server version. It renders the model and asks it
 * to load what it shows.
 */
export class SshpykSidebar extends ReactWidget {
  constructor(
    private readonly _model: ISshpykModel,
    private readonly _trans: TranslationBundle,
    private readonly _openConsole?: (kernelId: string) => void,
    private readonly _login?: (alias: string, sshConfig: string | null) => void,
    private readonly _logins?: FormLogins | null
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-sshpyk-Sidebar');
    this.title.icon = sshpykIcon;
    this.title.caption = _trans.__('SSH Kernels');
    // Focusable itself, so activating the panel moves the keyboard focus in.
    this.node.tabIndex = -1;
    void _model.refreshKernelspecs();
    void _model.refreshOrphans();
    void _model.refreshServerStatus();
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
    if (this._view.kind === 'form') {
      // the list view asks the hosts again whenever it comes back
      void this._model.refreshOrphans();
    }
    this._view = { kind: 'list' };
    this._actionError = null;
    this._model.selected = name;
    this.update();
  }

  showAddForm(): void {
    this._view = { kind: 'form', mode: 'add' };
    this.update();
  }

  private _edit = (entry: IKernelspecEntry) => {
    if (entry.config) {
      this._model.selected = entry.name;
      this._view = { kind: 'form', mode: 'edit', initial: entry.config };
      this.update();
    }
  };

  private _delete = async (entry: IKernelspecEntry) => {
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
    // the list view asks the hosts again whenever it comes back
    void this._model.refreshOrphans();
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
            logins={this._logins}
          />
        ) : (
          <UseSignal signal={this._model.kernelspecsChanged}>
            {() => (
              <UseSignal signal={this._model.tunnelsChanged}>
                {() => this._renderList()}
              </UseSignal>
            )}
          </UseSignal>
        )}
        {view.kind === 'list' && (
          <Orphans
            model={this._model}
            trans={trans}
            onOpenConsole={this._openConsole}
          />
        )}
        <ServerVersion model={this._model} trans={trans} />
      </div>
    );
  }

  private _renderList(): JSX.Element {
    const model = this._model;
    const errors = [model.kernelspecsError, this._actionError].filter(Boolean);
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
        {model.kernelspecs === null && !model.kernelspecsError ? (
          <p className="jp-sshpyk-Muted">{this._trans.__('Loading…')}</p>
        ) : model.kernelspecs !== null && model.kernelspecs.length === 0 ? (
          <EmptyState trans={this._trans} onAdd={() => this.showAddForm()} />
        ) : (
          <KernelspecList
            model={model}
            onEdit={this._edit}
            onDelete={entry => void this._delete(entry)}
            onLogin={this._login}
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
