// One builder for the WHERE clauses of list queries: each filter adds a condition and its
// parameters together, so the two can never drift apart.

export class Conditions {
  private readonly clauses: string[] = [];
  readonly params: unknown[] = [];

  /** Any SQL condition with its parameters. */
  add(sql: string, ...params: unknown[]): this {
    this.clauses.push(sql);
    this.params.push(...params);
    return this;
  }

  /** `column = value`, unless value is undefined. */
  eq(column: string, value: unknown): this {
    return value === undefined ? this : this.add(`${column} = ?`, value);
  }

  /**
   * `column IN (values)`, unless values is undefined. An empty list matches nothing when
   * `empty` is "none" (an explicit list of ids), anything when "any" (an unused filter).
   */
  in(column: string, values: readonly unknown[] | undefined, empty: "none" | "any"): this {
    if (values === undefined) return this;
    if (values.length === 0) return empty === "none" ? this.add("1 = 0") : this;
    return this.add(`${column} IN (${values.map(() => "?").join(", ")})`, ...values);
  }

  /** `gte <= column <= lte`, each bound left out when undefined or null. */
  range(column: string, gte: unknown, lte: unknown): this {
    if (gte !== undefined && gte !== null) this.add(`${column} >= ?`, gte);
    if (lte !== undefined && lte !== null) this.add(`${column} <= ?`, lte);
    return this;
  }

  get sql(): string {
    return this.clauses.length ? this.clauses.join(" AND ") : "1 = 1";
  }
}
