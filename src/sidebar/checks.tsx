import * as React from 'react';

import { ICheck } from '../api';
import { CheckRun, CheckRunState } from '../checks';

const STATUS_WORDS: Record<ICheck['status'], string> = {
  ok: 'ok',
  warn: 'warning',
  fail: 'failed',
  skipped: 'skipped'
};

const RUN_WORDS: Record<CheckRunState, string> = {
  running: 'Checking…',
  ok: 'All checks passed',
  warning: 'Passed with warnings',
  failed: 'Some checks failed',
  error: 'The check could not run'
};

/**
 * The checks of one run, each shown as soon as the server reports it.
 */
export function CheckResults(props: { run: CheckRun }): JSX.Element {
  const { run } = props;
  return (
    <div className="jp-sshpyk-Checks" data-testid="sshpyk-checks">
      <ul className="jp-sshpyk-Checks-list" aria-live="polite">
        {run.checks.map(check => (
          <li
            key={check.id}
            className={`jp-sshpyk-Check jp-sshpyk-Check-${check.status}`}
            data-testid={`sshpyk-check-${check.id}`}
            data-status={check.status}
          >
            <span className="jp-sshpyk-Check-badge">
              {STATUS_WORDS[check.status]}
            </span>
            <span className="jp-sshpyk-Check-title">{check.title}</span>
            {check.value && (
              <span className="jp-sshpyk-Check-value">{check.value}</span>
            )}
            {check.hint && check.status !== 'ok' && (
              <div className="jp-sshpyk-Check-hint">{check.hint}</div>
            )}
          </li>
        ))}
        {run.state === 'running' && (
          <li
            className="jp-sshpyk-Check jp-sshpyk-Check-running"
            data-status="running"
          >
            <span className="jp-sshpyk-Check-badge">running</span>
            <span className="jp-sshpyk-Check-title">
              {run.checks.length ? 'Next checks…' : 'Connecting…'}
            </span>
          </li>
        )}
      </ul>
      <div
        className={`jp-sshpyk-Checks-summary jp-sshpyk-Run-${run.state}`}
        data-testid="sshpyk-check-summary"
        data-state={run.state}
        role="status"
      >
        {run.error ? `${RUN_WORDS.error}: ${run.error}` : RUN_WORDS[run.state]}
      </div>
    </div>
  );
}

export function runWords(state: CheckRunState): string {
  return RUN_WORDS[state];
}
