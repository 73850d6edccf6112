/**
 * The dialog that shows one question of ssh's (a password, a one-time code,
 * a menu, an unknown host key) and takes the answer.
 *
 * ssh's prompt text is shown verbatim, as text (never as HTML), keeping its
 * line breaks and spacing, in a monospace font the user can select and copy:
 * a host key's fingerprint must be readable and comparable character by
 * character.
 */
import { Dialog } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { ILogin, ILoginPrompt } from './api';

let lastId = 0;

/**
 * The body of a login dialog: the prompt, and one input for the answer
 * (masked unless the prompt says its answer may be shown).
 */
export class LoginPromptBody
  extends Widget
  implements Dialog.IBodyWidget<string>
{
  constructor(prompt: ILoginPrompt, options: LoginPromptBody.IOptions = {}) {
    super();
    const trans = options.trans ?? nullTranslator.load('sshpyk');
    this.addClass('jp-sshpyk-LoginPrompt');
    if (options.retry) {
      const retry = document.createElement('p');
      retry.className = 'jp-sshpyk-LoginPrompt-retry';
      retry.setAttribute('role', 'alert');
      retry.textContent = trans.__(
        'The host asks again: the last answer was not accepted.'
      );
      this.node.appendChild(retry);
    }
    const text = document.createElement('pre');
    text.className = 'jp-sshpyk-LoginPrompt-text';
    text.id = `jp-sshpyk-LoginPrompt-text-${++lastId}`;
    text.dataset.testid = 'sshpyk-login-prompt';
    // textContent: ssh's words as they are, never markup
    text.textContent = prompt.text;
    this.node.appendChild(text);

    const input = (this._input = document.createElement('input'));
    input.className = 'jp-sshpyk-LoginPrompt-input jp-mod-styled';
    input.type = prompt.echo ? 'text' : 'password';
    input.dataset.testid = 'sshpyk-login-answer';
    // the prompt is the input's label; an answer is never remembered or
    // corrected by the browser
    input.setAttribute('aria-labelledby', text.id);
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.setAttribute('autocapitalize', 'off');
    input.setAttribute('autocorrect', 'off');
    this.node.appendChild(input);
  }

  /**
   * The answer as typed.
   */
  getValue(): string {
    return this._input.value;
  }

  private _input: HTMLInputElement;
}

export namespace LoginPromptBody {
  export interface IOptions {
    /**
     * Say that the host asks the same question again (a wrong answer).
     */
    retry?: boolean;
    trans?: TranslationBundle;
  }
}

/**
 * The dialog for one prompt of a login: Enter sends the answer (Send is the
 * default button); Cancel, Escape or the close button give the login up.
 */
export function createLoginDialog(
  login: ILogin,
  prompt: ILoginPrompt,
  options: LoginPromptBody.IOptions = {}
): Dialog<string> {
  const trans = options.trans ?? nullTranslator.load('sshpyk');
  const dialog = new Dialog<string>({
    title: trans.__('Log in to %1', login.alias),
    body: new LoginPromptBody(prompt, options),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Send') })
    ],
    focusNodeSelector: 'input'
  });
  dialog.addClass('jp-sshpyk-LoginDialog');
  dialog.node.dataset.testid = 'sshpyk-login-dialog';
  return dialog;
}
