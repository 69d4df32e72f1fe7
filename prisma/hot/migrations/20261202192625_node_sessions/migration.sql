-- AlterTable
ALTER TABLE "NodeStatus" ADD COLUMN     "runId" UUID,
ADD COLUMN     "sessionId" UUID;
