// The stage size the server hears: the latest height a page shows its stage at, sent at most
// every STAGE_SIZE_MS (a window being resized), and again after each join. No DOM.

export const STAGE_SIZE_MS = 250;

export class StageSize {
  /** @param {(height: number) => boolean} send  tells the server; false when it could not */
  constructor(send) {
    this._send = send;
    this.height = 0; // device pixels the page shows its stage (0: not known)
    this._sent = 0; // ... as the server last heard it on this connection
    this._timer = 0;
  }

  /** The page shows its stage `height` pixels high (a whole number, see requests.js). */
  set(height) {
    if (height === this.height) return;
    this.height = height;
    if (this._timer) return;
    this._timer = setTimeout(() => {
      this._timer = 0;
      this.flush();
    }, STAGE_SIZE_MS);
  }

  /** A new subscriber on the server (joined): it knows no size yet. */
  joined() {
    this._sent = 0;
    this.flush();
  }

  /** Sends the height unless the server has it already. */
  flush() {
    if (this._sent === this.height) return;
    if (this._send(this.height)) this._sent = this.height;
  }
}
