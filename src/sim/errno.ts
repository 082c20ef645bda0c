/** Thrown inside a simulated write: the write fails with this errno and its transaction rolls back. */
export class Errno extends Error {
  constructor(readonly errno: string) {
    super(errno);
  }
}

export const fail = (errno: string): never => {
  throw new Errno(errno);
};
