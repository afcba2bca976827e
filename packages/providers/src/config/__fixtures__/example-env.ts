import { fileURLToPath } from "node:url";

/** The environment `providers.example.yaml` needs (fake keys). */
export const EXAMPLE_ENV = {
  OPENAI_API_KEY: "sk-proj-exampleprimary0001",
  OPENAI_BACKUP_API_KEY: "sk-proj-examplebackup0002",
  DEEPSEEK_API_KEY: "sk-deepseek-example0003",
  ANTHROPIC_API_KEY: "sk-ant-api03-example0004",
  GEMINI_API_KEY: "AIzaSy-example-gemini-0005",
} as const;

/** The example's path on disk. */
export const EXAMPLE_PATH = fileURLToPath(new URL("./providers.example.yaml", import.meta.url));
