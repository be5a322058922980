// The request log's URL: query values under secret-looking names never reach a log line.
import { loggableUrl } from "../../api/metrics.ts";
import { SENSITIVE_WORDS } from "../../core/sensitive.ts";

describe("loggableUrl", () => {
  it("masks the value of every parameter a sensitive variable or extra key would be masked under", () => {
    for (const word of SENSITIVE_WORDS) {
      expect(loggableUrl(`/api/v1/dags?limit=5&my_${word}=s3cr3t-value`)).toBe(`/api/v1/dags?limit=5&my_${word}=***`);
    }
  });

  it("masks passphrase, private_key, service_account and keyfile_dict, any case", () => {
    expect(loggableUrl("/api/v1/dags?passphrase=a1&Private_Key=b2&service_account=c3&keyfile_dict=d4&dag_id_pattern=etl")).toBe(
      "/api/v1/dags?passphrase=***&Private_Key=***&service_account=***&keyfile_dict=***&dag_id_pattern=etl",
    );
  });

  it("keeps the path and ordinary parameters", () => {
    expect(loggableUrl("/api/v1/dags")).toBe("/api/v1/dags");
    expect(loggableUrl("/api/v1/dags?limit=5&order_by=-dag_id")).toBe("/api/v1/dags?limit=5&order_by=-dag_id");
    expect(loggableUrl("/x?token=abc&sig=1&key=2")).toBe("/x?token=***&sig=***&key=***");
  });
});
