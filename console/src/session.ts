/** Who is signed in, shared by the shell and pages. */
import { api, type Session } from './api.ts';
import { signal } from './signal.ts';

/** The session; null on the login page. */
export const session = signal<Session | null>(api.session);

/** Why the user is on the login page again (session expired), if they are. */
export const sessionEnded = signal(false);

api.onUnauthorised(() => {
  sessionEnded.set(true);
  session.set(null);
});
