-- AlterTable
ALTER TABLE "LoadBalancer" ADD COLUMN     "retryUnanswered" BOOLEAN NOT NULL DEFAULT false;
